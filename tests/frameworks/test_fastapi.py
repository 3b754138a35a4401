"""shopify_sessions.fastapi, for real: the example app under uvicorn against the strict
stand-in, with signed App Home requests and HMAC-signed webhooks; and the traps it avoids
(a storage per request, a sync storage in async code, a lock wait that stops the loop).

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations,
which name objects local to the tests."""

import asyncio
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI

import scenario
from conftest import REDIS_URL, dynamodb_app_url, require_server
from shopify_requests import (
    StandIn,
    async_http_client,
    async_http_client_to,
    counts,
    redis_keys_cleaned,
    seeded,
    session_token,
    unreachable_url,
    wait_for_token_request,
)
from shopify_sessions import (
    AsyncMemorySessionStorage,
    MemorySessionStorage,
    MissingSessionTableError,
    Session,
    SessionTableSchemaError,
)
from shopify_sessions.dynamodb import DynamoDBSessionStorage
from shopify_sessions.fastapi import ShopifySessions
from shopify_sessions.redis import RedisSessionStorage
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import fastapi_app


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under a real uvicorn server in a thread; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def example(standin: StandIn, tmp_path: Path) -> Iterator[tuple[httpx.Client, Any]]:
    """The example app on SQLite (aiosqlite), served; a client and a sync storage on its
    database for looking at the rows."""
    standin.reset()
    database = tmp_path / "app.sqlite3"
    app = fastapi_app.create_app(
        database_url=f"sqlite+aiosqlite:///{database}",
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        http_client=async_http_client(standin),
    )
    storage = SQLAlchemySessionStorage(f"sqlite:///{database}")
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, storage
    storage.close()


def test_the_example_serves_app_home_and_applies_signed_webhooks(
    example: tuple[httpx.Client, Any], standin: StandIn, shop: str, caplog: Any
) -> None:
    client, storage = example
    with caplog.at_level(logging.INFO, logger="app"):
        scenario.app_home_and_webhooks(client, storage, standin, shop)
    assert any("app/scopes_update for" in r.getMessage() for r in caplog.records)  # on_webhook


def test_the_example_refreshes_once_and_replaces_a_dead_refresh_token(
    example: tuple[httpx.Client, Any], standin: StandIn, shop: str
) -> None:
    scenario.expiring_and_dead_tokens(*example, standin, shop)


def test_session_tokens_are_checked_as_shopify_asks(
    example: tuple[httpx.Client, Any], standin: StandIn, shop: str
) -> None:
    scenario.hostile_session_tokens(*example, standin, shop)


def test_the_patch_id_token_page_frames_shops_only(
    example: tuple[httpx.Client, Any], shop: str
) -> None:
    scenario.hostile_patch_page(example[0], shop)


def test_exchange_failures_are_answered_as_documented(
    example: tuple[httpx.Client, Any], standin: StandIn, shop: str
) -> None:
    scenario.exchange_failures(*example, standin, shop)


def test_the_staff_users_online_session(
    example: tuple[httpx.Client, Any], standin: StandIn, shop: str
) -> None:
    scenario.staff_sessions(*example, standin, shop)


async def test_a_network_failure_during_the_exchange_is_503(standin: StandIn, shop: str) -> None:
    """Shopify unreachable (a port where nothing listens): 503 with Retry-After, where
    shopifyapp suggests 500."""
    shopify = ShopifySessions(
        AsyncMemorySessionStorage,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        http_client=async_http_client_to(unreachable_url()),
    )
    app = _app(shopify)
    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    async with shopify.lifespan(app), _client(app) as client:
        answer = await client.get("/shop", headers=bearer)
    assert (answer.status_code, answer.headers.get("retry-after")) == (503, "1"), answer.text


async def test_both_sessions_in_one_route_verify_the_request_once(
    standin: StandIn, shop: str
) -> None:
    shopify = ShopifySessions(
        AsyncMemorySessionStorage,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        http_client=async_http_client(standin),
    )
    app = FastAPI(lifespan=shopify.lifespan, exception_handlers=shopify.exception_handlers)

    @app.get("/both")
    async def both(
        offline: Annotated[Session, Depends(shopify.app_home_session)],
        online: Annotated[Session, Depends(shopify.app_home_online_session)],
    ) -> list[str]:
        return [offline.id, online.id]

    token = session_token(standin, shop, user_id=9)
    page = {"shop": shop, "embedded": "1", "id_token": token}
    async with shopify.lifespan(app), _client(app) as client:
        answer = await client.get("/both", params=page)
        assert answer.json() == [f"offline_{shop}", f"{shop}_9"]
        assert f"frame-ancestors https://{shop}" in answer.headers["content-security-policy"]
        assert counts(standin, shop)["id_token_exchanges"] == 2


@pytest.mark.parametrize("url", ["redis", "database", "dynamodb"])
async def test_a_database_redis_or_dynamodb_url_makes_its_storage(
    standin: StandIn, shop: str, tmp_path: Path, url: str
) -> None:
    if url == "dynamodb":
        with dynamodb_app_url() as location:
            await _serves_from(location, standin, shop)
        return
    if url == "redis":
        require_server("redis")
    location = REDIS_URL if url == "redis" else f"sqlite+aiosqlite:///{tmp_path}/u.db"
    await _serves_from(location, standin, shop)


async def _serves_from(location: str, standin: StandIn, shop: str) -> None:
    """The app made from ``location`` creates its table, serves a request with the
    storage its scheme names, and keeps the session there."""
    from shopify_sessions.dynamodb import AsyncDynamoDBSessionStorage
    from shopify_sessions.redis import AsyncRedisSessionStorage
    from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage

    url = location.partition(":")[0]
    shopify = ShopifySessions(
        location,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        http_client=async_http_client(standin),
        create_table=True,
    )
    app = _app(shopify)
    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    with redis_keys_cleaned(shop) if url == "redis" else nullcontext():
        async with shopify.lifespan(app), _client(app) as client:
            kinds = {"redis": AsyncRedisSessionStorage, "dynamodb": AsyncDynamoDBSessionStorage}
            assert isinstance(shopify.storage, kinds.get(url, AsyncSQLAlchemySessionStorage))
            assert (await client.get("/shop", headers=bearer)).json()["shop"] == shop
            assert await shopify.storage.load_session(f"offline_{shop}") is not None


async def test_a_missing_or_unusable_table_stops_the_startup_with_the_fix(
    standin: StandIn, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    shopify = ShopifySessions(
        url.replace("sqlite:", "sqlite+aiosqlite:"),
        client_id=standin.client_id,
        client_secret=standin.client_secret,
    )
    app = _app(shopify)
    with pytest.raises(MissingSessionTableError, match=r"(?s)create_table=True.*init"):
        async with shopify.lifespan(app):
            pass
    with SQLAlchemySessionStorage(url) as storage, storage.engine.begin() as connection:
        connection.exec_driver_sql('CREATE TABLE session (id TEXT PRIMARY KEY, "isOnline" TEXT)')
    with pytest.raises(SessionTableSchemaError, match="shopify-sessions upgrade"):
        async with shopify.lifespan(app):
            pass


async def test_the_lifespan_refuses_an_app_without_the_exception_handlers(
    standin: StandIn,
) -> None:
    shopify = ShopifySessions(
        AsyncMemorySessionStorage, client_id=standin.client_id, client_secret=standin.client_secret
    )
    with pytest.raises(RuntimeError, match=r"exception_handlers=shopify\.exception_handlers"):
        async with shopify.lifespan(FastAPI()):
            pass


async def test_the_storage_is_made_once_at_startup_and_closed_at_shutdown(
    standin: StandIn, shop: str
) -> None:
    standin.reset()
    made: list[AsyncMemorySessionStorage] = []

    def storage() -> AsyncMemorySessionStorage:
        made.append(AsyncMemorySessionStorage())
        return made[-1]

    shopify = ShopifySessions(
        storage,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        http_client=async_http_client(standin),
    )
    app = _app(shopify)

    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    async with shopify.lifespan(app), _client(app) as client:
        answers = [(await client.get("/shop", headers=bearer)).json() for _ in range(5)]
    assert len(made) == 1  # not one per request
    assert {answer["storage"] for answer in answers} == {id(made[0])}
    assert counts(standin, shop)["id_token_exchanges"] == 1
    with pytest.raises(RuntimeError, match="lifespan"):
        shopify.storage  # noqa: B018 - stopped with the app


@pytest.mark.parametrize(
    ("made", "twin"),
    [
        (MemorySessionStorage, "AsyncMemorySessionStorage"),
        (lambda: SQLAlchemySessionStorage("sqlite://"), "AsyncSQLAlchemySessionStorage"),
        (lambda: RedisSessionStorage(REDIS_URL), "AsyncRedisSessionStorage"),
        (
            lambda: DynamoDBSessionStorage("dynamodb://t12?region=us-east-1"),
            "AsyncDynamoDBSessionStorage",
        ),
    ],
    ids=["memory", "sqlalchemy", "redis", "dynamodb"],
)
async def test_a_synchronous_storage_is_refused_at_startup_naming_its_twin(
    standin: StandIn, made: Any, twin: str
) -> None:
    shopify = ShopifySessions(
        made, client_id=standin.client_id, client_secret=standin.client_secret
    )
    with pytest.raises(TypeError, match=f"asyncio twin, {twin}$"):
        async with shopify.lifespan(_app(shopify)):
            pass
    with pytest.raises(TypeError, match="function that makes the storage"):
        ShopifySessions(AsyncMemorySessionStorage(), client_id="a", client_secret="b")  # type: ignore[arg-type]


async def test_a_dependency_used_without_the_lifespan_says_so(shop: str, standin: StandIn) -> None:
    shopify = ShopifySessions(
        AsyncMemorySessionStorage, client_id=standin.client_id, client_secret=standin.client_secret
    )
    app = FastAPI()  # lifespan forgotten

    @app.get("/")
    async def home(session: Annotated[Session, Depends(shopify.app_home_session)]) -> str:
        return session.id

    async with _client(app) as client:
        with pytest.raises(RuntimeError, match="not started"):
            await client.get(
                "/", headers={"Authorization": f"Bearer {session_token(standin, shop)}"}
            )


@pytest.mark.parametrize("storage_kind", ["asyncio", "sync-disguised-as-asyncio"])
async def test_a_refresh_and_a_lock_wait_never_stop_the_event_loop(
    standin: StandIn, shop: str, tmp_path: Path, storage_kind: str
) -> None:
    """A's refresh is held at Shopify for 2 s; B, for the same shop, waits for its lock;
    meanwhile /health answers, and when A stores its pair, B uses it.

    The counter-proof: a sync storage given async methods (the trap) blocks the loop in
    B's lock wait, so A cannot finish, and B gives up at its lock timeout: 503."""
    standin.reset(latency=2.0)
    url = f"sqlite:///{tmp_path}/loop.sqlite3"
    sync_storage = SQLAlchemySessionStorage(url)
    sync_storage.create_table()
    sync_storage.store_session(seeded(standin, shop, access_expires_in=-10))

    def storage() -> Any:
        if storage_kind == "asyncio":
            from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage

            return AsyncSQLAlchemySessionStorage(url.replace("sqlite:", "sqlite+aiosqlite:"))
        return _Disguised(SQLAlchemySessionStorage(url))

    shopify = ShopifySessions(
        storage,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        http_client=async_http_client(standin),
        lock_timeout=3.0,
    )
    app = FastAPI(lifespan=shopify.lifespan, exception_handlers=shopify.exception_handlers)

    @app.get("/products")
    async def products(
        session: Annotated[Session, Depends(shopify.admin_extension_session)],
    ) -> str:
        return session.id

    @app.get("/health")
    async def health() -> str:
        return "ok"

    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    with serving(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            a = asyncio.ensure_future(client.get("/products", headers=bearer))
            await asyncio.to_thread(wait_for_token_request, standin, shop)
            b = asyncio.ensure_future(client.get("/products", headers=bearer))
            await asyncio.sleep(0.3)  # B is waiting for the lock now
            health = await client.get("/health")
            answered_during_the_refresh = not a.done()
            statuses = [(await a).status_code, (await b).status_code]
    sync_storage.close()

    assert health.status_code == 200
    if storage_kind == "asyncio":
        assert answered_during_the_refresh
        assert statuses == [200, 200]
        assert counts(standin, shop)["refreshes"] == 1
    else:
        assert statuses == [200, 503]


def _app(shopify: ShopifySessions) -> FastAPI:
    """An app whose ``GET /shop`` answers the shop of its App Home session, and the storage
    it was served from."""
    app = FastAPI(lifespan=shopify.lifespan, exception_handlers=shopify.exception_handlers)

    @app.get("/shop")
    async def which(
        session: Annotated[Session, Depends(shopify.app_home_session)],
    ) -> dict[str, Any]:
        return {"shop": session.shop, "storage": id(shopify.storage)}

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    """A client that calls ``app`` in this event loop (no server, no lifespan)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app.test")


class _Disguised:
    """The trap: a sync storage with ``async def`` methods that call it on the loop."""

    def __init__(self, storage: SQLAlchemySessionStorage) -> None:
        self._storage = storage

    async def load_session(self, id: str) -> Session | None:
        return self._storage.load_session(id)

    async def store_session(self, session: Session) -> bool:
        return self._storage.store_session(session)

    async def replace_session(self, session: Session, *, previous: Session) -> bool:
        return self._storage.replace_session(session, previous=previous)

    async def delete_session(self, id: str) -> bool:
        return self._storage.delete_session(id)

    async def delete_sessions(self, ids: Any) -> bool:
        return self._storage.delete_sessions(ids)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:
        return self._storage.find_sessions_by_shop(shop)

    @asynccontextmanager
    async def lock_session(self, id: str, *, timeout: float = 15.0) -> AsyncIterator[None]:
        with self._storage.lock_session(id, timeout=timeout):
            yield

    async def sessions_due_for_refresh(self, before: Any, *, batch_size: int = 100) -> Any:
        for batch in self._storage.sessions_due_for_refresh(before, batch_size=batch_size):
            yield batch

    async def close(self) -> None:
        self._storage.close()
