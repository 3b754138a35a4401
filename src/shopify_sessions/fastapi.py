"""Shopify sessions in a FastAPI (or Starlette) app: ``pip install 'shopify-sessions[fastapi]'``.

One :class:`ShopifySessions` per app: its asyncio storage and ``AsyncOfflineTokens`` are
made once, when the app starts (its lifespan), and closed when it stops. It gives
dependencies that hand a route the shop's valid offline session, or the staff user's
online one, for a verified App Home or extension request, and routes for webhooks and App
Home's patch ID token page.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

try:
    from fastapi import APIRouter, HTTPException, Request, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.types import ExceptionHandler
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "shopify_sessions.fastapi needs FastAPI: pip install 'shopify-sessions[fastapi]'"
    ) from error

import httpx
from shopify_app import ResultWithExchangeableIdToken, ShopifyApp

from ._app_storage import app_storage, prepare_storage_async
from ._locks import DEFAULT_LOCK_TIMEOUT
from ._session import Session
from ._storage import AsyncLockingSessionStorage
from ._web import (
    Answer,
    RequestKind,
    failure_answer,
    patch_id_token_answer,
    refusal,
    request_input,
    verify,
)
from .telemetry import Telemetry
from .tokens import AsyncOfflineTokens
from .webhooks import DEFAULT_WEBHOOK_LOCK_TIMEOUT, ReceivedWebhook, receive_webhook_async

__all__ = ["ShopifySessions"]


class ShopifySessions:
    """Shopify sessions for a FastAPI app.

    ::

        shopify = ShopifySessions("postgresql+asyncpg://...", client_id=..., client_secret=...)
        app = FastAPI(lifespan=shopify.lifespan, exception_handlers=shopify.exception_handlers)
        app.include_router(shopify.router())      # POST /webhooks, GET /auth/patch-id-token

        @app.get("/")
        async def home(session: Session = Depends(shopify.app_home_session)): ...

    The storage is made by the app's lifespan, so there is one per process (never one per
    request), on the event loop that serves the requests, and its table is checked then:
    a missing or unusable table stops the app from starting, with the fix in the message.
    A synchronous storage is refused, since each of its calls, and each wait for a session
    lock, would stop every other request. Lock waits are bounded (``lock_timeout``) and
    answered 503. :attr:`exception_handlers` answer the requests that get no session
    exactly as ``shopifyapp`` says (or 503); the lifespan refuses to start without them.

    Args:
        storage: a database URL (an ``AsyncSQLAlchemySessionStorage`` is made from it,
            ``postgresql+asyncpg://``, ``sqlite+aiosqlite://``...), a Redis URL
            (``redis://``, ``rediss://``: an ``AsyncRedisSessionStorage``), or a function
            that makes an asyncio locking storage; either is used once, at startup.
        client_id: the app's client id.
        client_secret: the app's client secret (it signs session tokens and webhooks).
        old_client_secret: the previous secret, accepted while it is being rotated.
        http_client: the ``httpx.AsyncClient`` for every call to Shopify; by default one
            made at startup and closed at shutdown.
        patch_id_token_path: the path of App Home's patch ID token page
            (:meth:`router` serves it).
        create_table: create the default table at startup if it is absent (for
            prototypes; use Alembic or ``shopify-sessions init`` in production). Either
            way the table is checked at startup.
        on_webhook: called with each :class:`~shopify_sessions.webhooks.ReceivedWebhook`
            verified and applied, for the app's own work (an ``async def``, or a plain
            function, which runs in the thread pool). If it raises, Shopify is answered
            500 and delivers the webhook again: the sessions' effects are idempotent.
        skew: As for :class:`~shopify_sessions.tokens.AsyncOfflineTokens`.
        lock_timeout: As for :class:`~shopify_sessions.tokens.AsyncOfflineTokens`.
        webhook_lock_timeout: As ``lock_timeout`` of
            :func:`~shopify_sessions.webhooks.apply_webhook`.
        telemetry: As for :class:`~shopify_sessions.tokens.AsyncOfflineTokens`.
    """

    __slots__ = (
        "_app",
        "_create_table",
        "_http_client",
        "_lock_timeout",
        "_on_webhook",
        "_patch_id_token_path",
        "_running",
        "_skew",
        "_storage",
        "_telemetry",
        "_webhook_lock_timeout",
    )

    def __init__(
        self,
        storage: str | Callable[[], AsyncLockingSessionStorage],
        *,
        client_id: str,
        client_secret: str,
        old_client_secret: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        patch_id_token_path: str = "/auth/patch-id-token",
        create_table: bool = False,
        on_webhook: Callable[[ReceivedWebhook], Awaitable[None] | None] | None = None,
        skew: timedelta = timedelta(minutes=5),
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        webhook_lock_timeout: float = DEFAULT_WEBHOOK_LOCK_TIMEOUT,
        telemetry: Telemetry | None = None,
    ) -> None:
        if not isinstance(storage, str) and not callable(storage):
            raise TypeError(
                "storage must be a database URL or a function that makes the storage at "
                f"startup (so that each process has one, on its event loop), not {storage!r}"
            )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(f"http_client must be an httpx.AsyncClient, not {http_client!r}")
        self._app = ShopifyApp(client_id, client_secret, old_client_secret)
        self._storage = storage
        self._http_client = http_client
        self._patch_id_token_path = patch_id_token_path
        self._create_table = create_table
        self._on_webhook = on_webhook
        self._skew, self._lock_timeout = skew, lock_timeout
        self._webhook_lock_timeout = webhook_lock_timeout
        self._telemetry = telemetry
        self._running: _Running | None = None

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"ShopifySessions({state}, client_id={self._app.config['client_id']!r})"

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """The app's lifespan (``FastAPI(lifespan=shopify.lifespan)``): makes the storage
        and the tokens, and closes them when the app stops. An app with a lifespan of its
        own enters this one in it: ``async with shopify.lifespan(app): yield``."""
        if self._running is not None:
            raise RuntimeError("this ShopifySessions is running already")
        if _Answered not in getattr(app, "exception_handlers", {}):
            raise RuntimeError(
                "ShopifySessions answers the requests that get no session through its "
                "exception handlers, which the app lacks: make it with FastAPI("
                "lifespan=shopify.lifespan, exception_handlers=shopify.exception_handlers) "
                "(with handlers of its own: {**its_own, **shopify.exception_handlers})"
            )
        storage = app_storage(
            self._storage,
            is_async=True,
            owner="shopify_sessions.fastapi",
            why="each of its calls and lock waits would stop the event loop",
        )
        async with _owned_client(self._http_client) as http_client:
            try:
                await prepare_storage_async(
                    storage,
                    create_table=self._create_table,
                    create_table_option="ShopifySessions(..., create_table=True)",
                )
                tokens = AsyncOfflineTokens(
                    storage,
                    client_id=self._app.config["client_id"],
                    client_secret=self._app.config["client_secret"],
                    http_client=http_client,
                    skew=self._skew,
                    lock_timeout=self._lock_timeout,
                    telemetry=self._telemetry,
                )
                self._running = _Running(storage, tokens, http_client)
                yield
            finally:
                self._running = None
                close = getattr(storage, "close", None)
                if close is not None:
                    await close()

    @property
    def exception_handlers(self) -> dict[Any, ExceptionHandler]:
        """The handlers that answer a request without a session with ``shopifyapp``'s
        answer as it is (its body encoded once, its headers), or 503: give them to the app,
        ``FastAPI(..., exception_handlers=shopify.exception_handlers)``."""
        return {_Answered: _answer}

    @property
    def app(self) -> ShopifyApp:
        """``shopifyapp``'s ``ShopifyApp`` with the app's credentials (Admin API calls,
        other verifications)."""
        return self._app

    @property
    def storage(self) -> AsyncLockingSessionStorage:
        """The app's storage (while the app runs)."""
        return self._started().storage

    @property
    def tokens(self) -> AsyncOfflineTokens:
        """The app's ``AsyncOfflineTokens`` (while the app runs), for webhooks' and jobs'
        own Admin API calls: ``await shopify.tokens.get(shop)``."""
        return self._started().tokens

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` that calls Shopify (while the app runs)."""
        return self._started().http_client

    async def app_home_session(self, request: Request, response: Response) -> Session:
        """Dependency: the shop's valid offline session for an App Home request (a page,
        or a fetch of its front end with the session token in ``Authorization``).

        ``shopifyapp`` verifies the request, and its session token is checked as Shopify
        asks (``dest`` a shop, ``iss`` on that shop, ``exp`` present, ``aud`` the app);
        the session is the stored one (refreshed when it expires within ``skew``), or, on
        the shop's first visit or after its merchant must re-authorise, the one Shopify's
        token exchange of the request's session token gives, stored. A page's response
        gets the headers ``shopifyapp`` asks for (its ``Content-Security-Policy``) when
        the route returns content; a route that builds its own ``Response`` copies
        ``response.headers``.

        A request without a session gets ``shopifyapp``'s answer to a request it did not
        verify (a redirect to the patch ID token page, a 401 App Bridge retries) or to a
        refused exchange, or 503 when Shopify, the network, the session's lock or the
        database failed for a while (:attr:`exception_handlers` answer them).
        """
        return (await self._offline(request, response, "app_home"))[1]

    async def app_home_online_session(self, request: Request, response: Response) -> Session:
        """Dependency: the staff user's online session for an App Home request, beside the
        shop's offline one (made or refreshed first, as :meth:`app_home_session`, so that
        background work has it).

        The user is the session token's ``sub``; the session (id ``{shop}_{user id}``) is
        the stored one while it is valid for ``skew``, else the one Shopify's token
        exchange for an online access token gives, stored: see
        :meth:`~shopify_sessions.tokens.AsyncOfflineTokens.get_or_exchange_online`. A
        route may take both dependencies: the request is verified once.
        """
        return await self._online(request, response, "app_home")

    async def admin_extension_session(self, request: Request, response: Response) -> Session:
        """Dependency: the same for a request of an admin UI extension (its session token
        in ``Authorization``), verified by ``verify_admin_ui_ext_req``."""
        return (await self._offline(request, response, "admin_extension"))[1]

    async def pos_extension_session(self, request: Request, response: Response) -> Session:
        """Dependency: the same for a POS UI extension, verified by
        ``verify_pos_ui_ext_req``."""
        return (await self._offline(request, response, "pos_extension"))[1]

    async def webhook(self, request: Request) -> Response:
        """Route: a webhook from Shopify, verified (HMAC) and applied to the sessions, then
        given to ``on_webhook``; see :func:`~shopify_sessions.webhooks.receive_webhook`
        for the answers."""
        storage = self._started().storage
        received = await receive_webhook_async(
            storage,
            self._app,
            await _input(request),
            lock_timeout=self._webhook_lock_timeout,
            telemetry=self._telemetry,
        )
        handler = self._on_webhook
        if received.ok and handler is not None:
            if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
                type(handler).__call__  # an object with an async __call__
            ):
                await handler(received)  # type: ignore[misc]
            else:
                await run_in_threadpool(handler, received)
        return _response(Answer.of(received.response))

    async def patch_id_token(self, request: Request) -> Response:
        """Route: App Home's patch ID token page, which fetches a fresh session token and
        reloads the page with it (``shopifyapp`` renders it); a ``shop`` that is not a
        shop's domain is answered 400."""
        return _response(patch_id_token_answer(self._app, await _input(request)))

    def router(self, *, webhooks: str | None = "/webhooks") -> APIRouter:
        """The routes: ``POST webhooks`` (``None``: none) and ``GET`` the patch ID token
        page; ``app.include_router(shopify.router())``."""
        router = APIRouter(include_in_schema=False)
        router.add_api_route(self._patch_id_token_path, self.patch_id_token, methods=["GET"])
        if webhooks is not None:
            router.add_api_route(webhooks, self.webhook, methods=["POST"])
        return router

    async def _offline(
        self, request: Request, response: Response, kind: RequestKind
    ) -> tuple[ResultWithExchangeableIdToken, Session]:
        """The request verified and the shop's offline session, once per request (the
        dependencies of one route share them)."""
        done = _memo(request)
        if kind not in done:
            tokens = self._started().tokens
            verified = verify(self._app, kind, await _input(request), self._patch_id_token_path)
            refused = refusal(verified)
            if refused is not None:
                raise _Answered(refused)
            try:
                session = await tokens.get_or_exchange(verified)
            except Exception as error:
                answered = _answered(error, verified)
                if answered is None:
                    raise
                raise answered from error
            response.headers.update(verified.response.headers)
            done[kind] = verified, session
        return done[kind]  # type: ignore[no-any-return]

    async def _online(self, request: Request, response: Response, kind: RequestKind) -> Session:
        verified, _ = await self._offline(request, response, kind)
        done = _memo(request)
        if (kind, "online") not in done:
            try:
                done[kind, "online"] = await self._started().tokens.get_or_exchange_online(verified)
            except Exception as error:
                answered = _answered(error, verified)
                if answered is None:
                    raise
                raise answered from error
        return done[kind, "online"]  # type: ignore[no-any-return]

    def _started(self) -> _Running:
        if self._running is None:
            raise RuntimeError(
                "ShopifySessions is not started: make the app with FastAPI(lifespan="
                "shopify.lifespan, exception_handlers=shopify.exception_handlers), or enter "
                "its lifespan in the app's own"
            )
        return self._running


@dataclass(frozen=True, slots=True)
class _Running:
    storage: AsyncLockingSessionStorage
    tokens: AsyncOfflineTokens
    http_client: httpx.AsyncClient


async def _input(request: Request) -> Any:
    body = await request.body()
    return request_input(request.method, str(request.url), request.headers.items(), body)


def _response(answer: Answer) -> Response:
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


class _Answered(HTTPException):
    """A request answered without its session: :func:`_answer` sends ``answer`` as it is
    (an ``HTTPException``, so that an app without the handler still sends its status and
    headers)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status, answer.body or None, dict(answer.headers) or None)
        self.answer = answer


async def _answer(request: Request, error: Exception) -> Response:
    assert isinstance(error, _Answered)
    return _response(error.answer)


def _answered(error: Exception, verified: ResultWithExchangeableIdToken) -> _Answered | None:
    """The answer a dependency raises for an ``error`` getting the session, or ``None``:
    the error is raised as it is (FastAPI answers 500 and logs it)."""
    answer = failure_answer(error, verified)
    return None if answer is None else _Answered(answer)


def _memo(request: Request) -> dict[Any, Any]:
    """What this request's dependencies found already."""
    memo: dict[Any, Any] | None = getattr(request.state, "shopify_sessions", None)
    if memo is None:
        memo = request.state.shopify_sessions = {}
    return memo


@asynccontextmanager
async def _owned_client(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """``client``, or one of our own for the app's lifetime."""
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(timeout=30.0) as own:
        yield own
