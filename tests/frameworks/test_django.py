"""shopify_sessions.django, for real: the example project through Django's test client
(CSRF checks on) on the real PostgreSQL, MariaDB and SQLite, against the strict stand-in,
with signed App Home requests and HMAC-signed webhooks; settings that build the storage
from DATABASES or a URL; the management command, in-process and as ``manage.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "django_app"
sys.path.insert(0, str(PROJECT))
os.environ["DJANGO_SETTINGS_MODULE"] = "django_settings"

import django  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

django.setup()

import scenario  # noqa: E402
from conftest import REDIS_URL, dynamodb_app_url, require_server, unique_table_name  # noqa: E402
from shopify_requests import (  # noqa: E402
    StandIn,
    counts,
    fail,
    http_client,
    http_client_to,
    redis_keys_cleaned,
    seeded,
    session_token,
    unreachable_url,
)
from shopify_sessions import django as shopify  # noqa: E402
from shopify_sessions import offline_session_id  # noqa: E402
from shopify_sessions.redis import RedisSessionStorage  # noqa: E402
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage, session_table  # noqa: E402

SERVERS = {"sqlite": "default", "postgresql": "postgresql", "mysql": "mysql"}


@dataclass
class Answer:
    status_code: int
    text: str
    headers: Any


class DjangoClient:
    """Django's test client with the ``get``/``post`` of the scenario's ``httpx.Client``."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True)

    def get(self, path: str, params: dict[str, str] | None = None, **kw: Any) -> Answer:
        return self._answer(self.client.get(path, params or {}, headers=kw.get("headers")))

    def post(
        self, path: str, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        headers = dict(headers or {})
        content_type = headers.pop("Content-Type", "application/octet-stream")
        response = self.client.post(path, content, content_type=content_type, headers=headers)
        return self._answer(response)

    @staticmethod
    def _answer(response: Any) -> Answer:
        return Answer(response.status_code, response.content.decode(), response.headers)


@dataclass
class Project:
    server: str
    alias: str
    table: str
    storage: SQLAlchemySessionStorage
    client: DjangoClient


@pytest.fixture(params=list(SERVERS), ids=list(SERVERS))
def project(request: pytest.FixtureRequest, standin: StandIn) -> Iterator[Project]:
    """The example project on a database of the matrix, a table of its own, and Shopify's
    calls routed to the stand-in."""
    server = request.param
    require_server(server)
    standin.reset()
    alias, table = SERVERS[server], unique_table_name("dj")
    http = http_client(standin)
    config = {"DATABASE": alias, "TABLE": table, "HTTP_CLIENT": http}
    with override_settings(
        SHOPIFY_API_KEY=standin.client_id,
        SHOPIFY_API_SECRET=standin.client_secret,
        SHOPIFY_SESSIONS=config,
    ):
        url = shopify.database_url()
        with SQLAlchemySessionStorage(url, table=session_table(MetaData(), table)) as creator:
            creator.create_table()
        storage = SQLAlchemySessionStorage(url, table=table)
        try:
            yield Project(server, alias, table, storage, DjangoClient())
        finally:
            with storage.engine.begin() as connection:
                connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            storage.close()
            http.close()


def test_the_example_serves_app_home_and_applies_signed_webhooks(
    project: Project, standin: StandIn, shop: str, caplog: Any
) -> None:
    received: list[Any] = []

    def keep(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs["received"])

    shopify.webhook_received.connect(keep)
    try:
        scenario.app_home_and_webhooks(project.client, project.storage, standin, shop)
    finally:
        shopify.webhook_received.disconnect(keep)
    assert [r.topic for r in received] == ["app/scopes_update", *["app/uninstalled"] * 2]
    assert shopify.get_storage().alias == project.alias  # on Django's connection of the entry


def test_the_example_refreshes_once_and_replaces_a_dead_refresh_token(
    project: Project, standin: StandIn, shop: str
) -> None:
    scenario.expiring_and_dead_tokens(project.client, project.storage, standin, shop)


def test_session_tokens_are_checked_as_shopify_asks(
    project: Project, standin: StandIn, shop: str
) -> None:
    scenario.hostile_session_tokens(project.client, project.storage, standin, shop)


def test_the_patch_id_token_page_frames_shops_only(project: Project, shop: str) -> None:
    scenario.hostile_patch_page(project.client, shop)


def test_exchange_failures_are_answered_as_documented(
    project: Project, standin: StandIn, shop: str
) -> None:
    scenario.exchange_failures(project.client, project.storage, standin, shop)


def test_the_staff_users_online_session(project: Project, standin: StandIn, shop: str) -> None:
    scenario.staff_sessions(project.client, project.storage, standin, shop)


def test_a_network_failure_during_the_exchange_is_503(
    project: Project, standin: StandIn, shop: str
) -> None:
    """Shopify unreachable (a port where nothing listens): 503 with Retry-After, where
    shopifyapp suggests 500."""
    config = {"DATABASE": project.alias, "TABLE": project.table}
    with (
        http_client_to(unreachable_url()) as unreachable,
        override_settings(SHOPIFY_SESSIONS={**config, "HTTP_CLIENT": unreachable}),
    ):
        bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
        answer = project.client.post("/api/products/count", headers=bearer)
    assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "1"), answer.text


def test_a_redis_url_makes_a_redis_storage(standin: StandIn, shop: str) -> None:
    require_server("redis")
    with (
        redis_keys_cleaned(shop),
        http_client(standin) as http,
        override_settings(
            SHOPIFY_API_KEY=standin.client_id,
            SHOPIFY_API_SECRET=standin.client_secret,
            SHOPIFY_SESSIONS={"URL": REDIS_URL, "HTTP_CLIENT": http},
        ),
    ):
        assert isinstance(shopify.get_storage(), RedisSessionStorage)
        bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
        assert DjangoClient().post("/api/products/count", headers=bearer).status_code == 200
        assert shopify.get_storage().load_session(offline_session_id(shop)) is not None


def test_a_dynamodb_url_makes_a_dynamodb_storage(standin: StandIn, shop: str) -> None:
    from shopify_sessions.dynamodb import DynamoDBSessionStorage

    with (
        dynamodb_app_url() as url,
        http_client(standin) as http,
        override_settings(
            SHOPIFY_API_KEY=standin.client_id,
            SHOPIFY_API_SECRET=standin.client_secret,
            SHOPIFY_SESSIONS={"URL": url, "HTTP_CLIENT": http, "CREATE_TABLE": True},
        ),
    ):
        assert isinstance(shopify.get_storage(), DynamoDBSessionStorage)
        bearer = {"Authorization": f"Bearer {session_token(standin, shop)}"}
        assert DjangoClient().post("/api/products/count", headers=bearer).status_code == 200
        assert shopify.get_storage().load_session(offline_session_id(shop)) is not None


def test_manage_py_runs_the_subcommands_on_the_table_of_the_settings(
    project: Project, standin: StandIn, shop: str, capfd: Any
) -> None:
    """Through call_command, then as a user runs it: ``manage.py`` in a subprocess, whose
    Shopify calls go to the stand-in (``--shopify-url``); exit codes are the command's."""
    capfd.readouterr()
    call_command("shopify_sessions", "check", "--json")
    checked = json.loads(capfd.readouterr().out)
    assert checked["ok"] is True

    name = shop.removesuffix(".myshopify.com")
    due, gone = f"{name}-due.myshopify.com", f"{name}-gone.myshopify.com"
    project.storage.store_session(seeded(standin, due, refresh_expires_in=86400))
    project.storage.store_session(seeded(standin, gone, refresh_expires_in=86400))
    fail(standin, gone, "invalid_grant")
    at_standin = ("--shopify-url", standin.url)
    done = _manage_py(project, standin, "refresh-expiring", "--within", "7d", "--json", *at_standin)
    assert done.returncode == 1, done.stderr  # a shop needs its merchant
    report = json.loads(done.stdout)
    assert (report["refreshed"], report["reauthorization_required"]) == ([due], [gone])
    assert counts(standin, due)["refreshes"] == 1
    renewed = project.storage.load_session(offline_session_id(due))
    assert renewed is not None and renewed.access_token not in done.stdout + done.stderr


def _manage_py(project: Project, standin: StandIn, *arguments: str) -> Any:
    environment = {
        **os.environ,
        "SHOPIFY_API_KEY": standin.client_id,
        "SHOPIFY_API_SECRET": standin.client_secret,
        "SHOPIFY_SESSIONS_TEST_DATABASE": project.alias,
        "SHOPIFY_SESSIONS_TEST_TABLE": project.table,
        "PYTHONPATH": os.pathsep.join(map(str, [Path(__file__).parent, ROOT / "tests"])),
        "DJANGO_SETTINGS_MODULE": "django_settings",
    }
    return subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), "shopify_sessions", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


# --- settings -----------------------------------------------------------------------------


def test_the_url_is_made_from_a_databases_entry() -> None:
    assert shopify.database_url("postgresql").startswith("postgresql://")
    assert shopify.database_url("mysql").startswith("mysql://")
    assert shopify.database_url("default").startswith("sqlite:///")
    socket = shopify.database_url("socket")
    assert socket == (
        "postgresql://app:p%40ss%3Aword@/shop?host=%2Fvar%2Frun%2Fpostgresql&sslmode=require"
    )
    with override_settings(SHOPIFY_SESSIONS={"URL": "postgresql://elsewhere/db"}):
        assert shopify.database_url() == "postgresql://elsewhere/db"
    for alias, message in [
        ("memory", "in-memory"),
        ("unsupported", "PostgreSQL, MySQL/MariaDB or SQLite"),
        ("nowhere", "not in DATABASES"),
    ]:
        with pytest.raises(ImproperlyConfigured, match=message):
            shopify.database_url(alias)
    with (
        override_settings(SHOPIFY_SESSIONS={"DATABSE": "default"}),
        pytest.raises(ImproperlyConfigured, match="unknown keys"),
    ):
        shopify.get_storage()


def test_the_storage_is_made_once_and_anew_when_the_settings_change(
    tmp_path: Path, standin: StandIn
) -> None:
    first = {"URL": f"sqlite:///{tmp_path}/a.db", "CREATE_TABLE": True}
    credentials = {
        "SHOPIFY_API_KEY": standin.client_id,
        "SHOPIFY_API_SECRET": standin.client_secret,
    }
    with override_settings(SHOPIFY_SESSIONS=first, **credentials):
        storage = shopify.get_storage()
        assert shopify.get_storage() is storage and shopify.get_tokens().get("a-shop") is None
    second = {**first, "URL": f"sqlite:///{tmp_path}/b.db"}
    with override_settings(SHOPIFY_SESSIONS=second, **credentials):
        assert shopify.get_storage() is not storage
        assert shopify.get_storage().engine.url.database.endswith("b.db")


def test_an_async_view_is_refused() -> None:
    async def view(request: Any) -> Any:
        return None

    with pytest.raises(TypeError, match="make the view sync"):
        shopify.app_home(view)
    with pytest.raises(TypeError, match="make the view sync"):
        shopify.app_home(online=True)(view)
