"""Shopify sessions in a Flask app: ``pip install 'shopify-sessions[flask]'``.

A Flask extension, :class:`ShopifySessions`: its synchronous storage and ``OfflineTokens``
are made once per app (``init_app``), it gives a view the shop's valid offline session, or
the staff user's online one, for a verified App Home or extension request, and it serves
webhooks and App Home's patch ID token page.
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
from shopify_app import ResultWithExchangeableIdToken, ShopifyApp

from ._app_storage import app_storage, prepare_storage
from ._locks import DEFAULT_LOCK_TIMEOUT
from ._session import Session
from ._storage import LockingSessionStorage
from ._web import (
    DEFAULT_PATCH_ID_TOKEN_PATH,
    Answer,
    RequestKind,
    failure_answer,
    patch_id_token_answer,
    refusal,
    request_input,
    verify,
)
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
    makes the storage once per app (never one per request) and checks its table: a
    missing or unusable table stops it, with the fix in the message. An asyncio storage is
    refused, since a Flask view cannot await it.

    Args:
        app: the app, or ``None`` to call :meth:`init_app` later (app factories).
        storage: a database URL (a ``SQLAlchemySessionStorage`` is made from it), a Redis
            URL (``redis://``, ``rediss://``: a ``RedisSessionStorage``), or a function
            that makes a synchronous locking storage.
        client_id: the app's client id.
        client_secret: the app's client secret (it signs session tokens and webhooks).
        old_client_secret: the previous secret, accepted while it is being rotated.
        http_client: the ``httpx.Client`` for every call to Shopify.
        patch_id_token_path: App Home's patch ID token page; ``None`` serves none.
        webhooks_path: where Shopify's webhooks are received; ``None`` serves none.
        create_table: create the default table at ``init_app`` if it is absent (for
            prototypes). Either way the table is checked there.
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
                "storage must be a database or Redis URL, or a function that makes it, not "
                f"{storage!r}"
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
        """Make the app's storage and tokens, check the storage's table, and add the
        webhook and patch ID token routes."""
        options = self._options
        client_id = options["client_id"] or app.config.get("SHOPIFY_API_KEY")
        client_secret = options["client_secret"] or app.config.get("SHOPIFY_API_SECRET")
        if not client_id or not client_secret:
            raise RuntimeError(
                "ShopifySessions needs the app's credentials: client_id and client_secret, "
                "or SHOPIFY_API_KEY and SHOPIFY_API_SECRET in app.config"
            )
        source = options["storage"] or app.config.get("SHOPIFY_SESSIONS_DATABASE_URL")
        if source is None:
            raise RuntimeError(
                "ShopifySessions needs a storage: storage=, or SHOPIFY_SESSIONS_DATABASE_URL "
                "in app.config"
            )
        storage = app_storage(
            source, is_async=False, owner="shopify_sessions.flask", why=_SYNC_ONLY
        )
        try:
            prepare_storage(
                storage,
                create_table=options["create_table"],
                create_table_option="ShopifySessions(..., create_table=True)",
            )
            tokens = OfflineTokens(
                storage,
                client_id=client_id,
                client_secret=client_secret,
                http_client=options["http_client"],
                skew=options["skew"],
                lock_timeout=options["lock_timeout"],
                telemetry=options["telemetry"],
            )
        except BaseException:
            close = getattr(storage, "close", None)
            if close is not None:
                close()
            raise
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

        ``shopifyapp`` verifies the request, and its session token is checked as Shopify
        asks (``dest`` a shop, ``iss`` on that shop, ``exp`` present, ``aud`` the app);
        the session is the stored one (refreshed when it expires within ``skew``), or, on
        the shop's first visit or after its merchant must re-authorise, the one Shopify's
        token exchange of the request's session token gives, stored. The response gets
        the headers ``shopifyapp`` asks for (its ``Content-Security-Policy`` for a page).

        Aborts the request with ``shopifyapp``'s answer when it is not verified (a
        redirect to the patch ID token page, a 401 App Bridge retries) or the exchange was
        refused, or with 503 when Shopify, the network, the session's lock or the database
        failed for a while.
        """
        return self._offline("app_home")[1]

    def app_home_online_session(self) -> Session:
        """The staff user's online session for the current App Home request, beside the
        shop's offline one (made or refreshed first, as :meth:`app_home_session`, so that
        background work has it).

        The user is the session token's ``sub``; the session (id ``{shop}_{user id}``) is
        the stored one while it is valid for ``skew``, else the one Shopify's token
        exchange for an online access token gives, stored: see
        :meth:`~shopify_sessions.tokens.OfflineTokens.get_or_exchange_online`. A view may
        call both: the request is verified once.
        """
        verified = self._offline("app_home")[0]
        done = _memo()
        if "app_home_online" not in done:
            try:
                done["app_home_online"] = _state().tokens.get_or_exchange_online(verified)
            except Exception as error:
                _abort_for(error, verified)
        session: Session = done["app_home_online"]
        return session

    def admin_extension_session(self) -> Session:
        """The same for a request of an admin UI extension (``verify_admin_ui_ext_req``)."""
        return self._offline("admin_extension")[1]

    def pos_extension_session(self) -> Session:
        """The same for a POS UI extension (``verify_pos_ui_ext_req``)."""
        return self._offline("pos_extension")[1]

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
        """View: App Home's patch ID token page (``shopifyapp`` renders it); a ``shop``
        that is not a shop's domain is answered 400."""
        return _response(patch_id_token_answer(_state().shopify_app, _input()))

    def _offline(self, kind: RequestKind) -> tuple[ResultWithExchangeableIdToken, Session]:
        """The request verified and the shop's offline session, once per request."""
        done = _memo()
        if kind not in done:
            state = _state()
            path = self._options["patch_id_token_path"] or DEFAULT_PATCH_ID_TOKEN_PATH
            verified = verify(state.shopify_app, kind, _input(), path)
            refused = refusal(verified)
            if refused is not None:
                _abort(refused)
            try:
                session = state.tokens.get_or_exchange(verified)
            except Exception as error:
                _abort_for(error, verified)
            headers = dict(verified.response.headers)
            if headers:

                @after_this_request
                def add_headers(response: Response) -> Response:
                    response.headers.update(headers)
                    return response

            done[kind] = verified, session
        found: tuple[ResultWithExchangeableIdToken, Session] = done[kind]
        return found


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


#: Why a Flask app cannot use an asyncio storage.
_SYNC_ONLY = "a Flask view cannot await it"


def _memo() -> dict[Any, Any]:
    """What the current request's calls found already (in its WSGI environ: ``g`` belongs
    to the app context, which requests of a context pushed by hand share)."""
    memo: dict[Any, Any] = request.environ.setdefault("shopify_sessions.memo", {})
    return memo


def _input() -> Any:
    return request_input(request.method, request.url, request.headers.items(), request.get_data())


def _response(answer: Answer) -> Response:
    return Response(answer.body, status=answer.status, headers=dict(answer.headers))


def _abort(answer: Answer) -> NoReturn:
    abort(_response(answer))


def _abort_for(error: Exception, verified: ResultWithExchangeableIdToken) -> NoReturn:
    """Abort with the answer to ``error`` getting the session, or raise it (Flask
    answers 500 and logs it)."""
    answer = failure_answer(error, verified)
    if answer is None:
        raise error
    _abort(answer)
