"""Shopify sessions in a FastAPI (or Starlette) app: ``pip install 'shopify-sessions[fastapi]'``.

One :class:`ShopifySessions` per app: its asyncio storage and ``AsyncOfflineTokens`` are
made once, when the app starts (its lifespan), and closed when it stops. It gives a
dependency that hands a route the shop's valid offline session for a verified App Home or
extension request, and routes for webhooks and App Home's patch ID token page.
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
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "shopify_sessions.fastapi needs FastAPI: pip install 'shopify-sessions[fastapi]'"
    ) from error

import httpx
from shopify_app import ShopifyApp

from ._locks import DEFAULT_LOCK_TIMEOUT
from ._session import Session
from ._storage import AsyncLockingSessionStorage, is_asyncio_storage
from ._web import (
    Answer,
    RequestKind,
    failure_answer,
    request_input,
    verify,
)
from ._wrappers import is_locking_storage, wrapper_advice
from .telemetry import Telemetry
from .tokens import AsyncOfflineTokens
from .webhooks import DEFAULT_WEBHOOK_LOCK_TIMEOUT, ReceivedWebhook, receive_webhook_async

__all__ = ["ShopifySessions"]


class ShopifySessions:
    """Shopify sessions for a FastAPI app.

    ::

        shopify = ShopifySessions("postgresql+asyncpg://...", client_id=..., client_secret=...)
        app = FastAPI(lifespan=shopify.lifespan)
        app.include_router(shopify.router())      # POST /webhooks, GET /auth/patch-id-token

        @app.get("/")
        async def home(session: Session = Depends(shopify.app_home_session)): ...

    The storage is made by the app's lifespan, so there is one per process (never one per
    request), on the event loop that serves the requests; a synchronous storage is
    refused, since each of its calls, and each wait for a session lock, would stop every
    other request. Lock waits are bounded (``lock_timeout``) and answered 503.

    Args:
        storage: a database URL (an ``AsyncSQLAlchemySessionStorage`` is made from it,
            ``postgresql+asyncpg://``, ``sqlite+aiosqlite://``...), or a function that
            makes an asyncio locking storage; either is called once, at startup.
        client_id: the app's client id.
        client_secret: the app's client secret (it signs session tokens and webhooks).
        old_client_secret: the previous secret, accepted while it is being rotated.
        http_client: the ``httpx.AsyncClient`` for every call to Shopify; by default one
            made at startup and closed at shutdown.
        patch_id_token_path: the path of App Home's patch ID token page
            (:meth:`router` serves it).
        create_table: create the default table at startup if it is absent (for
            prototypes; use Alembic or ``shopify-sessions init`` in production).
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
        storage = self._make_storage()
        async with _owned_client(self._http_client) as http_client:
            try:
                create_table = getattr(storage, "create_table", None)
                if self._create_table and create_table is not None:
                    await create_table()
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

        ``shopifyapp`` verifies the request; the session is the stored one (refreshed
        when it expires within ``skew``), or, on the shop's first visit or after its
        merchant must re-authorise, the one Shopify's token exchange of the request's
        session token gives, stored. A page's response gets the headers ``shopifyapp``
        asks for (its ``Content-Security-Policy``) when the route returns content; a route
        that builds its own ``Response`` copies ``response.headers``.

        Raises:
            HTTPException: ``shopifyapp``'s answer to a request it did not verify (a
                redirect to the patch ID token page, a 401 App Bridge retries), or 503
                when Shopify, the session's lock or the database failed for a while.
        """
        return await self._session(request, response, "app_home")

    async def admin_extension_session(self, request: Request, response: Response) -> Session:
        """Dependency: the same for a request of an admin UI extension (its session token
        in ``Authorization``), verified by ``verify_admin_ui_ext_req``."""
        return await self._session(request, response, "admin_extension")

    async def pos_extension_session(self, request: Request, response: Response) -> Session:
        """Dependency: the same for a POS UI extension, verified by
        ``verify_pos_ui_ext_req``."""
        return await self._session(request, response, "pos_extension")

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
        reloads the page with it (``shopifyapp`` renders it)."""
        result = self._app.app_home_patch_id_token(await _input(request))
        return _response(Answer.of(result.response))

    def router(self, *, webhooks: str | None = "/webhooks") -> APIRouter:
        """The routes: ``POST webhooks`` (``None``: none) and ``GET`` the patch ID token
        page; ``app.include_router(shopify.router())``."""
        router = APIRouter(include_in_schema=False)
        router.add_api_route(self._patch_id_token_path, self.patch_id_token, methods=["GET"])
        if webhooks is not None:
            router.add_api_route(webhooks, self.webhook, methods=["POST"])
        return router

    async def _session(self, request: Request, response: Response, kind: RequestKind) -> Session:
        tokens = self._started().tokens
        verified = verify(self._app, kind, await _input(request), self._patch_id_token_path)
        if not verified.ok:
            raise _http_error(Answer.of(verified.response))
        try:
            session = await tokens.get_or_exchange(verified)
        except Exception as error:
            answer = failure_answer(error, verified)
            if answer is None:
                raise
            raise _http_error(answer) from error
        response.headers.update(verified.response.headers)
        return session

    def _started(self) -> _Running:
        if self._running is None:
            raise RuntimeError(
                "ShopifySessions is not started: make the app with "
                "FastAPI(lifespan=shopify.lifespan), or enter it in the app's own lifespan"
            )
        return self._running

    def _make_storage(self) -> AsyncLockingSessionStorage:
        if isinstance(self._storage, str):
            from .sqlalchemy import AsyncSQLAlchemySessionStorage

            return AsyncSQLAlchemySessionStorage(self._storage)
        storage = self._storage()
        if getattr(storage, "load_session", None) is not None and not is_asyncio_storage(storage):
            raise TypeError(
                f"the storage function made {storage!r}, not an asyncio locking storage: a "
                "synchronous storage would stop the event loop at each call and each lock "
                "wait; use its asyncio twin (AsyncSQLAlchemySessionStorage, "
                "AsyncMemorySessionStorage)"
            )
        if not is_locking_storage(storage, is_async=True):
            raise TypeError(
                f"the storage function made {storage!r}, not an asyncio locking storage"
                + wrapper_advice(storage, is_async=True)
            )
        return storage


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


def _http_error(answer: Answer) -> HTTPException:
    return HTTPException(answer.status, answer.body or None, dict(answer.headers) or None)


@asynccontextmanager
async def _owned_client(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """``client``, or one of our own for the app's lifetime."""
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(timeout=30.0) as own:
        yield own
