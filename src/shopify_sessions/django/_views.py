"""The views and view decorators: webhooks, App Home's patch ID token page, and the shop's
valid offline session (and the staff user's online one) for a verified App Home or
extension request."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, overload

from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .._web import (
    Answer,
    RequestKind,
    failure_answer,
    patch_id_token_answer,
    refusal,
    request_input,
    verify,
)
from ..webhooks import receive_webhook
from ._settings import made

View = Callable[..., HttpResponse]

webhook_received = Signal()
"""The signal sent with each webhook verified and applied to the sessions, for the app's own
work: its receivers get ``received``, the
:class:`~shopify_sessions.webhooks.ReceivedWebhook`. A receiver that raises makes the view
answer 500, and Shopify delivers the webhook again (the sessions' effects are idempotent)."""


@overload
def app_home(view: Callable[..., HttpResponse], /) -> Callable[..., HttpResponse]: ...
@overload
def app_home(
    *, online: bool = False
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]: ...
def app_home(view: Callable[..., HttpResponse] | None = None, /, *, online: bool = False) -> Any:
    """Decorate the view of an App Home page or fetch: ``request.shopify_session`` is the
    shop's valid offline session; with ``@app_home(online=True)``,
    ``request.shopify_online_session`` is also the staff user's online session.

    ``shopifyapp`` verifies the request, and its session token is checked as Shopify asks
    (``dest`` a shop, ``iss`` on that shop, ``exp`` present, ``aud`` the app). The offline
    session is the stored one (refreshed when it expires within ``SKEW``), or, on the
    shop's first visit or after its merchant must re-authorise, the one Shopify's token
    exchange of the request's session token gives, stored. The online session (id
    ``{shop}_{user id}``, the user being the token's ``sub``) is the stored one while it is
    valid for ``SKEW``, else the one the token exchange for an online access token gives,
    stored (see :meth:`~shopify_sessions.tokens.OfflineTokens.get_or_exchange_online`).
    The view's response gets the headers ``shopifyapp`` asks for (its
    ``Content-Security-Policy`` for a page). A request not verified gets ``shopifyapp``'s
    answer (a redirect to the patch ID token page, a 401 App Bridge retries), as does a
    refused exchange; one whose session Shopify, the network, the lock or the database
    could not give for a while, a 503.

    The view is exempt from CSRF checks: the session token, signed by Shopify, is what
    authenticates the request. A synchronous view only: under ASGI Django runs it in a
    thread, where the synchronous storage belongs.
    """
    if view is None:
        return lambda view: _verified(view, "app_home", online=online)
    return _verified(view, "app_home", online=online)


def admin_extension(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The same for the requests of an admin UI extension (``verify_admin_ui_ext_req``)."""
    return _verified(view, "admin_extension")


def pos_extension(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The same for a POS UI extension (``verify_pos_ui_ext_req``)."""
    return _verified(view, "pos_extension")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """View: a webhook from Shopify, verified (HMAC) and applied to the sessions, then sent
    as :data:`webhook_received`; see :func:`~shopify_sessions.webhooks.receive_webhook`
    for the answers."""
    objects = made()
    received = receive_webhook(
        objects.storage,
        objects.app,
        _input(request),
        lock_timeout=objects.options["WEBHOOK_LOCK_TIMEOUT"],
        telemetry=objects.options["TELEMETRY"],
    )
    if received.ok:
        webhook_received.send(sender=webhook, received=received)
    return _response(Answer.of(received.response))


@require_GET
def patch_id_token(request: HttpRequest) -> HttpResponse:
    """View: App Home's patch ID token page, which fetches a fresh session token
    (``shopifyapp`` renders it); a ``shop`` that is not a shop's domain is answered 400.
    Route it at ``PATCH_ID_TOKEN_PATH``."""
    return _response(patch_id_token_answer(made().app, _input(request)))


def _verified(view: View, kind: RequestKind, *, online: bool = False) -> View:
    if inspect.iscoroutinefunction(view):
        raise TypeError(
            f"{view.__qualname__} is async: the session storage is synchronous, and Django "
            "runs a sync view in a thread under ASGI; make the view sync"
        )

    @functools.wraps(view)
    def verified_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        objects = made()
        path = objects.options["PATCH_ID_TOKEN_PATH"]
        verified = verify(objects.app, kind, _input(request), path)
        refused = refusal(verified)
        if refused is not None:
            return _response(refused)
        try:
            request.shopify_session = objects.tokens.get_or_exchange(verified)
            if online:
                request.shopify_online_session = objects.tokens.get_or_exchange_online(verified)
        except Exception as error:
            answer = failure_answer(error, verified)
            if answer is None:
                raise
            return _response(answer)
        response = view(request, *args, **kwargs)
        for name, value in verified.response.headers.items():
            response[name] = value
        return response

    exempt: View = csrf_exempt(verified_view)
    return exempt


def _input(request: HttpRequest) -> Any:
    url = request.build_absolute_uri()
    return request_input(request.method or "GET", url, request.headers.items(), request.body)


def _response(answer: Answer) -> HttpResponse:
    return HttpResponse(answer.body, status=answer.status, headers=dict(answer.headers))
