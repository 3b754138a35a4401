"""The example's routes: App Home, its API (one call as the staff user), Shopify's
webhooks, the patch ID token page."""

from django.urls import path

from shopify_sessions import django as shopify

from . import views

urlpatterns = [
    path("", views.products_count),
    path("api/products/count", views.products_count),
    path("api/me", views.me),
    path("webhooks", shopify.webhook),
    path("auth/patch-id-token", shopify.patch_id_token),  # SHOPIFY_SESSIONS' default path
]
