"""shopify_sessions.flask, for real: the example app under a threaded werkzeug server
against the strict stand-in, with signed App Home requests and HMAC-signed webhooks;
one storage per app, sync only; concurrent requests of one shop refresh once."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from werkzeug.serving import make_server

import scenario
from shopify_requests import (
    StandIn,
    counts,
    http_client,
    seeded,
    session_token,
)
from shopify_sessions import AsyncMemorySessionStorage, MemorySessionStorage
from shopify_sessions.flask import ShopifySessions
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

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


def test_an_asyncio_storage_and_missing_settings_are_refused(standin: StandIn) -> None:
    with pytest.raises(TypeError, match="sync twin"):
        ShopifySessions(
            Flask("a"),
            storage=AsyncMemorySessionStorage,  # type: ignore[arg-type]
            client_id=standin.client_id,
            client_secret=standin.client_secret,
        )
    with pytest.raises(RuntimeError, match="SHOPIFY_API_KEY"):
        ShopifySessions(Flask("b"), storage=MemorySessionStorage)
    with pytest.raises(RuntimeError, match="SHOPIFY_SESSIONS_DATABASE_URL"):
        ShopifySessions(
            Flask("c"), client_id=standin.client_id, client_secret=standin.client_secret
        )
    shopify = ShopifySessions()
    with Flask("d").app_context(), pytest.raises(RuntimeError, match="init_app"):
        shopify.storage  # noqa: B018
