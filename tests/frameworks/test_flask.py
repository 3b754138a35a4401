"""shopify_sessions.flask, for real: the example app under a threaded werkzeug server
against the strict stand-in, with signed App Home requests and HMAC-signed webhooks;
one storage per app, sync only; concurrent requests of one shop refresh once."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from werkzeug.serving import make_server

import scenario
from conftest import REDIS_URL, dynamodb_app_url, require_server
from shopify_requests import (
    StandIn,
    counts,
    http_client,
    http_client_to,
    redis_keys_cleaned,
    seeded,
    session_token,
    unreachable_url,
)
from shopify_sessions import (
    AsyncMemorySessionStorage,
    MemorySessionStorage,
    MissingSessionTableError,
    SessionTableSchemaError,
)
from shopify_sessions.dynamodb import AsyncDynamoDBSessionStorage
from shopify_sessions.flask import ShopifySessions
from shopify_sessions.redis import AsyncRedisSessionStorage, RedisSessionStorage
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage, SQLAlchemySessionStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import flask_app


@contextmanager
def serving(app: Flask) -> Iterator[httpx.Client]:
    """``app`` under werkzeug's threaded server; a client on it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=30) as client:
            yield client
    finally:
        server.shutdown()
        thread.join(15)


@pytest.fixture
def example(standin: StandIn, tmp_path: Path) -> Iterator[tuple[httpx.Client, Any]]:
    standin.reset()
    url = f"sqlite:///{tmp_path}/app.sqlite3"
    http = http_client(standin)
    app = flask_app.create_app(
        database_url=url,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        http_client=http,
    )
    storage = SQLAlchemySessionStorage(url)
    with serving(app) as client:
        yield client, storage
    storage.close()
    # The app's own storage: Flask has no shutdown hook to close it (Python 3.13 warns of
    # a SQLite connection left to the garbage collector).
    app.extensions["shopify_sessions"].storage.close()
    http.close()


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


def test_a_network_failure_during_the_exchange_is_503(standin: StandIn, shop: str) -> None:
    """Shopify unreachable (a port where nothing listens): 503 with Retry-After, where
    shopifyapp suggests 500."""
    with http_client_to(unreachable_url()) as unreachable:
        app = _app(
            storage=MemorySessionStorage,
            client_id=standin.client_id,
            client_secret=standin.client_secret,
            http_client=unreachable,
        )
        bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
        answer = app.test_client().get("/shop", headers=bearer)
    assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "1"), answer.text


@pytest.mark.parametrize("url", ["redis", "database", "dynamodb"])
def test_a_database_redis_or_dynamodb_url_makes_its_storage(
    standin: StandIn, shop: str, tmp_path: Path, url: str
) -> None:
    if url == "dynamodb":
        with dynamodb_app_url() as location:
            _serves_from(location, standin, shop)
        return
    if url == "redis":
        require_server("redis")
    _serves_from(REDIS_URL if url == "redis" else f"sqlite:///{tmp_path}/u.db", standin, shop)


def _serves_from(location: str, standin: StandIn, shop: str) -> None:
    """The app made from ``location`` creates its table, serves a request with the
    storage its scheme names, and keeps the session there."""
    from shopify_sessions.dynamodb import DynamoDBSessionStorage

    url = location.partition(":")[0]
    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    with (
        redis_keys_cleaned(shop) if url == "redis" else nullcontext(),
        http_client(standin) as http,
    ):
        flask = Flask("u")
        flask.config["SHOPIFY_SESSIONS_DATABASE_URL"] = location
        app = _app(
            flask,
            client_id=standin.client_id,
            client_secret=standin.client_secret,
            http_client=http,
            create_table=True,
        )
        assert app.test_client().get("/shop", headers=bearer).text == shop
        with app.app_context():
            storage = app.extensions["shopify_sessions"].storage
            kinds = {"redis": RedisSessionStorage, "dynamodb": DynamoDBSessionStorage}
            assert isinstance(storage, kinds.get(url, SQLAlchemySessionStorage))
            assert storage.load_session(f"offline_{shop}") is not None
            storage.close()


def test_a_missing_or_unusable_table_stops_init_app_with_the_fix(
    standin: StandIn, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    credentials = {"client_id": standin.client_id, "client_secret": standin.client_secret}
    with pytest.raises(MissingSessionTableError, match=r"(?s)create_table=True.*init"):
        ShopifySessions(Flask("a"), storage=url, **credentials)
    with SQLAlchemySessionStorage(url) as storage, storage.engine.begin() as connection:
        connection.exec_driver_sql('CREATE TABLE session (id TEXT PRIMARY KEY, "isOnline" TEXT)')
    with pytest.raises(SessionTableSchemaError, match="shopify-sessions upgrade"):
        ShopifySessions(Flask("b"), storage=url, **credentials)


@pytest.mark.parametrize(
    ("made", "twin"),
    [
        (AsyncMemorySessionStorage, "MemorySessionStorage"),
        (lambda: AsyncSQLAlchemySessionStorage("sqlite+aiosqlite://"), "SQLAlchemySessionStorage"),
        (lambda: AsyncRedisSessionStorage(REDIS_URL), "RedisSessionStorage"),
        (
            lambda: AsyncDynamoDBSessionStorage("dynamodb://t12?region=us-east-1"),
            "DynamoDBSessionStorage",
        ),
    ],
    ids=["memory", "sqlalchemy", "redis", "dynamodb"],
)
def test_an_asyncio_storage_is_refused_naming_its_twin(
    standin: StandIn, made: Any, twin: str
) -> None:
    with pytest.raises(TypeError, match=f"sync twin, {twin}$"):
        ShopifySessions(
            Flask("a"),
            storage=made,
            client_id=standin.client_id,
            client_secret=standin.client_secret,
        )


def test_concurrent_requests_of_a_shop_refresh_once(
    example: tuple[httpx.Client, Any], standin: StandIn, shop: str
) -> None:
    """Threads of the server, each with the app's one storage: one refresh, the others
    wait for its lock and use the pair it stored."""
    client, storage = example
    standin.reset(latency=0.5)
    storage.store_session(seeded(standin, shop, access_expires_in=-10))
    bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: client.post("/api/products/count", headers=bearer), range(4))
        )
    assert [answer.status_code for answer in answers] == [200] * 4
    assert counts(standin, shop)["refreshes"] == 1
    assert counts(standin, shop).get("reuses", 0) == 0


def test_the_storage_is_made_once_per_app(standin: StandIn) -> None:
    made: list[MemorySessionStorage] = []

    def storage() -> MemorySessionStorage:
        made.append(MemorySessionStorage())
        return made[-1]

    shopify = ShopifySessions(
        storage=storage, client_id=standin.client_id, client_secret=standin.client_secret
    )
    first, second = Flask("first"), Flask("second")
    shopify.init_app(first)
    shopify.init_app(second)
    with first.app_context():
        assert shopify.storage is made[0]
        assert shopify.storage is made[0]
    with second.app_context():
        assert shopify.storage is made[1]
    assert len(made) == 2


def test_missing_settings_are_refused(standin: StandIn) -> None:
    with pytest.raises(RuntimeError, match="SHOPIFY_API_KEY"):
        ShopifySessions(Flask("b"), storage=MemorySessionStorage)
    with pytest.raises(RuntimeError, match="SHOPIFY_SESSIONS_DATABASE_URL"):
        ShopifySessions(
            Flask("c"), client_id=standin.client_id, client_secret=standin.client_secret
        )
    shopify = ShopifySessions()
    with Flask("d").app_context(), pytest.raises(RuntimeError, match="init_app"):
        shopify.storage  # noqa: B018


def _app(flask: Flask | None = None, **options: Any) -> Flask:
    """An app whose ``GET /shop`` answers the shop of its App Home session."""
    app = flask or Flask("shop")
    shopify = ShopifySessions(app, **options)

    @app.get("/shop")
    def which() -> str:
        return shopify.app_home_session().shop

    return app
