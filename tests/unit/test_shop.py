from __future__ import annotations

import pytest

from shopify_sessions._errors import InvalidSessionError, InvalidShopError
from shopify_sessions._shop import (
    is_valid_shop,
    offline_session_id,
    online_session_id,
    sanitize_shop,
)


@pytest.mark.parametrize(
    "shop",
    [
        "someshop.myshopify.com",
        "devshop.myshopify.io",
        "test-shop.myshopify.com",
        "dev-shop-.myshopify.io",
        "Shop_1.myshopify.com",
        "shop.shopify.com",
        "shop.shop.dev",
        "someshop.myshopify.com/",
        "someshop.myshopify.com//",
    ],
)
def test_valid_shops_are_returned_unchanged(shop: str) -> None:
    assert sanitize_shop(shop) == shop
    assert is_valid_shop(shop)


@pytest.mark.parametrize(
    "shop",
    [
        "notshopify.com",
        "-invalid.myshopify.io",
        "_invalid.myshopify.com",
        "not-admin.shopify.com/store/my-shop",
        "my-shop.myshopify.com.nope",
        "my-shop.myshopify.com/admin",
        "https://my-shop.myshopify.com",
        "https://admin.shopify.com/store/my-shop",
        "admin.shopify.com/store/my-shop/",
        "admin.shop.dev/store/my-shop",
        "sub.shop.myshopify.com",
        "shop.myshopify.com\n",
        "",
    ],
)
def test_invalid_shops_raise(shop: str) -> None:
    with pytest.raises(InvalidShopError):
        sanitize_shop(shop)
    assert not is_valid_shop(shop)


@pytest.mark.parametrize(
    ("admin_url", "shop"),
    [
        ("admin.shopify.com/store/my-shop", "my-shop.myshopify.com"),
        ("admin.myshopify.com/store/my-shop", "my-shop.myshopify.com"),
        ("admin.myshopify.io/store/shop_2", "shop_2.myshopify.com"),
    ],
)
def test_admin_urls_become_legacy_domains(admin_url: str, shop: str) -> None:
    assert sanitize_shop(admin_url) == shop


def test_invalid_shop_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        sanitize_shop("nope")
    assert issubclass(InvalidShopError, InvalidSessionError)


def test_non_str_is_invalid() -> None:
    assert not is_valid_shop(None)  # type: ignore[arg-type]


def test_session_ids() -> None:
    assert offline_session_id("shop.myshopify.com") == "offline_shop.myshopify.com"
    assert offline_session_id("admin.shopify.com/store/shop") == "offline_shop.myshopify.com"
    assert online_session_id("shop.myshopify.com", 42) == "shop.myshopify.com_42"
    assert online_session_id("shop.myshopify.com", "42") == "shop.myshopify.com_42"


def test_session_ids_reject_invalid_shops() -> None:
    with pytest.raises(InvalidShopError):
        offline_session_id("evil.com")
    with pytest.raises(InvalidShopError):
        online_session_id("evil.com", 1)
