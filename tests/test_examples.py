"""The examples run, for real: the FastAPI app against FakeShopify, keep-warm."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from shopify_sessions import offline_session_id
from shopify_sessions._time import utc_now
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
from shopify_sessions.testing import FakeShopify

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import fastapi_app
import keep_warm


def test_the_fastapi_example_runs_the_whole_lifecycle(
    fake_shopify: FakeShopify, shop: str, tmp_path: Path
) -> None:
    database = tmp_path / "app.sqlite3"
    app = fastapi_app.create_app(
        database_url=f"sqlite+aiosqlite:///{database}",
        client_id=fake_shopify.client_id,
        client_secret=fake_shopify.client_secret,
        http_client=fake_shopify.async_http_client(),
    )
    storage = SQLAlchemySessionStorage(f"sqlite:///{database}")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            # No session token: shopifyapp sends the browser to fetch one.
            bounce = client.get("/", params={"shop": shop}, follow_redirects=False)
            assert bounce.status_code == 302
            assert "/auth/patch-id-token" in bounce.headers["location"]

            # App Home's first visit: token exchange, stored, then the Admin API.
            query = {"shop": shop, "embedded": "1", "id_token": fake_shopify.session_token(shop)}
            first = client.get("/", params=query)
            assert first.status_code == 200, first.text
            assert first.text == f"{shop} has 42 products"
            stored = storage.load_session(offline_session_id(shop))
            assert stored is not None and stored.refresh_token and stored.expires
            assert fake_shopify.counters(shop).id_token_exchanges == 1

            # A fetch from the front end, with the token in a header: no new exchange.
            bearer = {"Authorization": f"Bearer {fake_shopify.session_token(shop)}"}
            assert client.post("/api/products/count", headers=bearer).status_code == 200
            assert fake_shopify.counters(shop).id_token_exchanges == 1

            # The access token is about to expire: OfflineTokens refreshes it first.
            stored.expires = utc_now() + timedelta(seconds=30)
            storage.store_session(stored)
            assert client.post("/api/products/count", headers=bearer).status_code == 200
            assert fake_shopify.counters(shop).refreshes == 1
            renewed = storage.load_session(stored.id)
            assert renewed is not None and renewed.refresh_token != stored.refresh_token

            # A forged session token is refused before anything else.
            forger = FakeShopify(client_id=fake_shopify.client_id)  # another secret
            forgery = forger.session_token(shop)
            forged = {"Authorization": f"Bearer {forgery}"}
            assert client.post("/api/products/count", headers=forged).status_code == 401
            assert fake_shopify.counters(shop).admin_401 == 0
    finally:
        server.should_exit = True
        thread.join(10)
        storage.close()


def test_the_keep_warm_example(
    fake_shopify: FakeShopify, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    database = tmp_path / "cron.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("SHOPIFY_API_KEY", fake_shopify.client_id)
    monkeypatch.setenv("SHOPIFY_API_SECRET", fake_shopify.client_secret)
    storage = SQLAlchemySessionStorage(f"sqlite:///{database}")
    storage.create_table()
    due, idle, gone = (f"cron-{uuid.uuid4().hex[:8]}-{n}.myshopify.com" for n in range(3))
    sessions = {
        due: fake_shopify.seed_offline(due, refresh_token_expires_in=2 * 86400),
        idle: fake_shopify.seed_offline(idle),
        gone: fake_shopify.seed_offline(gone, refresh_token_expires_in=86400),
    }
    for session in sessions.values():
        storage.store_session(session)
    fake_shopify.fail(gone, "invalid_grant")
    try:
        with fake_shopify.http_client() as http:
            assert keep_warm.main(http_client=http) == 1  # one shop needs its merchant
            out = capsys.readouterr().out
            assert "refreshed 1 shops" in out and f"{gone}: the merchant must" in out
            renewed = storage.load_session(offline_session_id(due))
            assert renewed is not None and renewed.refresh_token != sessions[due].refresh_token
            assert storage.load_session(offline_session_id(idle)) == sessions[idle]
            storage.delete_session(offline_session_id(gone))
            assert keep_warm.main(http_client=http) == 0  # nothing else is due
    finally:
        storage.close()


@pytest.fixture(autouse=True)
def _no_stray_sqlite_files(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
