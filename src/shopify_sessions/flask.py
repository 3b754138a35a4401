"""Shopify sessions in a Flask app: ``pip install 'shopify-sessions[flask]'``.

A Flask extension, :class:`ShopifySessions`: its synchronous storage and ``OfflineTokens``
are made once per app (``init_app``), it gives a view the shop's valid offline session for
a verified App Home or extension request, and it serves webhooks and App Home's patch ID
token page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

try:
    from flask import Flask, Response, abort, after_this_request, current_app, request
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "shopify_sessions.flask needs Flask: pip install 'shopify-sessions[flask]'"
    ) from error

import httpx
from shopify_app import ShopifyApp

from ._locks import DEFAULT_LOCK_TIMEOUT
from ._session import Session
from ._storage import LockingSessionStorage, is_asyncio_storage
from ._web import (
    DEFAULT_PATCH_ID_TOKEN_PATH,
    Answer,
    RequestKind,
    failure_answer,
    request_input,
    verify,
)
from ._wrappers import is_locking_storage, wrapper_advice
from .telemetry import Telemetry
from .tokens import OfflineTokens
from .webhooks import DEFAULT_WEBHOOK_LOCK_TIMEOUT, ReceivedWebhook, receive_webhook

__all__ = ["ShopifySessions"]

_EXTENSION = "shopify_sessions"


class ShopifySessions:
    """Shopify sessions for a Flask app (a Flask extension).

    ::

        shopify = ShopifySessions(storage="postgresql://...")   # or in app.config
        shopify.init_app(app)                 # POST /webhooks, GET /auth/patch-id-token

        @app.get("/")
        def home():
            session = shopify.app_home_session()   # the shop's valid offline session
            ...

    ``init_app`` reads what the constructor was not given from ``app.config``:
    ``SHOPIFY_API_KEY``, ``SHOPIFY_API_SECRET``, ``SHOPIFY_SESSIONS_DATABASE_URL``. It
    makes the storage once per app (never one per request); an asyncio storage is refused,
    since a Flask view cannot await it.

    Args:
        app: the app, or ``None`` to call :meth:`init_app` later (app factories).
        storage: a database URL (a ``SQLAlchemySessionStorage`` is made from it), or a
            function that makes a synchronous locking storage.
        client_id: the app's client id.
        client_secret: the app's client secret (it signs session tokens and webhooks).
        old_client_secret: the previous secret, accepted while it is being rotated.
        http_client: the ``httpx.Client`` for every call to Shopify.
        patch_id_token_path: App Home's patch ID token page; ``None`` serves none.
        webhooks_path: where Shopify's webhooks are received; ``None`` serves none.
        create_table: create the default table at ``init_app`` if it is absent (for
            prototypes).
        on_webhook: called with each :class:`~shopify_sessions.webhooks.ReceivedWebhook`
            verified and applied, for the app's own work. If it raises, Shopify is answered
            500 and delivers the webhook again: the sessions' effects are idempotent.
        skew: As for :class:`~shopify_sessions.tokens.OfflineTokens`.
        lock_timeout: As for :class:`~shopify_sessions.tokens.OfflineTokens`.
        webhook_lock_timeout: As ``lock_timeout`` of
            :func:`~shopify_sessions.webhooks.apply_webhook`.
        telemetry: As for :class:`~shopify_sessions.tokens.OfflineTokens`.
    """

    __slots__ = ("_options",)

    def __init__(
        self,
        app: Flask | None = None,
        *,
        storage: str | Callable[[], LockingSessionStorage] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        old_client_secret: str | None = None,
        http_client: httpx.Client | None = None,
        patch_id_token_path: str | None = "/auth/patch-id-token",
        webhooks_path: str | None = "/webhooks",
        create_table: bool = False,
        on_webhook: Callable[[ReceivedWebhook], object] | None = None,
        skew: timedelta = timedelta(minutes=5),
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        webhook_lock_timeout: float = DEFAULT_WEBHOOK_LOCK_TIMEOUT,
        telemetry: Telemetry | None = None,
    ) -> None:
        if storage is not None and not isinstance(storage, str) and not callable(storage):
            raise TypeError(
                f"storage must be a database URL or a function that makes it, not {storage!r}"
            )
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(f"http_client must be an httpx.Client, not {http_client!r}")
        self._options: dict[str, Any] = {
            "storage": storage,
            "client_id": client_id,
            "client_secret": client_secret,
            "old_client_secret": old_client_secret,
            "http_client": http_client,
            "patch_id_token_path": patch_id_token_path,
            "webhooks_path": webhooks_path,
            "create_table": create_table,
            "on_webhook": on_webhook,
            "skew": skew,
            "lock_timeout": lock_timeout,
            "webhook_lock_timeout": webhook_lock_timeout,
            "telemetry": telemetry,
        }
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Make the app's storage and tokens, and add the webhook and patch ID token routes."""
        options = self._options
        client_id = options["client_id"] or app.config.get("SHOPIFY_API_KEY")
        client_secret = options["client_secret"] or app.config.get("SHOPIFY_API_SECRET")
        if not client_id or not client_secret:
            raise RuntimeError(
                "ShopifySessions needs the app's credentials: client_id and client_secret, "
                "or SHOPIFY_API_KEY and SHOPIFY_API_SECRET in app.config"
            )
        storage = _make_storage(
            options["storage"] or app.config.get("SHOPIFY_SESSIONS_DATABASE_URL")
        )
        create_table = getattr(storage, "create_table", None)
        if options["create_table"] and create_table is not None:
            create_table()
        tokens = OfflineTokens(
            storage,
            client_id=client_id,
            client_secret=client_secret,
            http_client=options["http_client"],
            skew=options["skew"],
            lock_timeout=options["lock_timeout"],
            telemetry=options["telemetry"],
        )
        shopify_app = ShopifyApp(client_id, client_secret, options["old_client_secret"])
        app.extensions[_EXTENSION] = _State(storage, tokens, shopify_app)
        if options["patch_id_token_path"] is not None:
            app.add_url_rule(
                options["patch_id_token_path"],
                "shopify_sessions_patch_id_token",
                self.patch_id_token,
                methods=["GET"],
            )
        if options["webhooks_path"] is not None:
            app.add_url_rule(
                options["webhooks_path"], "shopify_sessions_webhook", self.webhook, methods=["POST"]
            )

    @property
    def app(self) -> ShopifyApp:
        """The current app's ``shopifyapp`` ``ShopifyApp`` (Admin API calls)."""
        return _state().shopify_app

    @property
    def storage(self) -> LockingSessionStorage:
        """The current app's storage."""
        return _state().storage

    @property
    def tokens(self) -> OfflineTokens:
        """The current app's ``OfflineTokens``, for webhooks' and jobs' own Admin API calls."""
        return _state().tokens

    def app_home_session(self) -> Session:
        """The shop's valid offline session for the current App Home request (a page, or a
        fetch of its front end with the session token in ``Authorization``).

        ``shopifyapp`` verifies the request; the session is the stored one (refreshed when
        it expires within ``skew``), or, on the shop's first visit or after its merchant
        must re-authorise, the one Shopify's token exchange of the request's session token
        gives, stored. The response gets the headers ``shopifyapp`` asks for (its
        ``Content-Security-Policy`` for a page).

        Aborts the request with ``shopifyapp``'s answer when it is not verified (a
        redirect to the patch ID token page, a 401 App Bridge retries), or with 503 when
        Shopify, the session's lock or the database failed for a while.
        """
        return self._session("app_home")

    def admin_extension_session(self) -> Session:
        """The same for a request of an admin UI extension (``verify_admin_ui_ext_req``)."""
        return self._session("admin_extension")

    def pos_extension_session(self) -> Session:
        """The same for a POS UI extension (``verify_pos_ui_ext_req``)."""
        return self._session("pos_extension")

    def webhook(self) -> Response:
        """View: a webhook from Shopify, verified (HMAC) and applied to the sessions, then
        given to ``on_webhook``; see :func:`~shopify_sessions.webhooks.receive_webhook`."""
        state = _state()
        received = receive_webhook(
            state.storage,
            state.shopify_app,
            _input(),
            lock_timeout=self._options["webhook_lock_timeout"],
            telemetry=self._options["telemetry"],
        )
        if received.ok and self._options["on_webhook"] is not None:
            self._options["on_webhook"](received)
        return _response(Answer.of(received.response))

    def patch_id_token(self) -> Response:
        """View: App Home's patch ID token page (``shopifyapp`` renders it)."""
        result = _state().shopify_app.app_home_patch_id_token(_input())
        return _response(Answer.of(result.response))

    def _session(self, kind: RequestKind) -> Session:
        state = _state()
        path = self._options["patch_id_token_path"] or DEFAULT_PATCH_ID_TOKEN_PATH
        verified = verify(state.shopify_app, kind, _input(), path)
        if not verified.ok:
            _abort(Answer.of(verified.response))
        try:
            session = state.tokens.get_or_exchange(verified)
        except Exception as error:
            answer = failure_answer(error, verified)
            if answer is None:
                raise
            _abort(answer)
        headers = dict(verified.response.headers)
        if headers:

            @after_this_request
            def add_headers(response: Response) -> Response:
                response.headers.update(headers)
                return response

        return session


@dataclass(frozen=True, slots=True)
class _State:
    storage: LockingSessionStorage
    tokens: OfflineTokens
    shopify_app: ShopifyApp


def _state() -> _State:
    state = current_app.extensions.get(_EXTENSION)
    if state is None:
        raise RuntimeError("ShopifySessions.init_app(app) was not called for this app")
    assert isinstance(state, _State)
    return state


def _make_storage(
    storage: str | Callable[[], LockingSessionStorage] | None,
) -> LockingSessionStorage:
    if storage is None:
        raise RuntimeError(
            "ShopifySessions needs a storage: storage=, or SHOPIFY_SESSIONS_DATABASE_URL in "
            "app.config"
        )
    if isinstance(storage, str):
        from .sqlalchemy import SQLAlchemySessionStorage

        return SQLAlchemySessionStorage(storage)
    made = storage()
    if is_asyncio_storage(made):
        raise TypeError(
            f"the storage function made {made!r}, not a synchronous locking storage: a "
            "Flask view cannot await an asyncio one; use its sync twin "
            "(SQLAlchemySessionStorage, MemorySessionStorage)"
        )
    if not is_locking_storage(made, is_async=False):
        raise TypeError(
            f"the storage function made {made!r}, not a synchronous locking storage"
            + wrapper_advice(made, is_async=False)
        )
    return made


def _input() -> Any:
    return request_input(request.method, request.url, request.headers.items(), request.get_data())


def _response(answer: Answer) -> Response:
    return Response(answer.body, status=answer.status, headers=dict(answer.headers))


def _abort(answer: Answer) -> NoReturn:
    abort(_response(answer))
