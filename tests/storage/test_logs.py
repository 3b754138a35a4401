"""No token or secret in any log record, with every logger at DEBUG.

On every backend: the storage's operations, a refresh and a token exchange through
OfflineTokens (FakeShopify), a signed webhook, and the command's ``check``, all with the
root logger and every other logger at DEBUG (SQLAlchemy's row logging, aiosqlite's
statements with their parameters, botocore's bodies, redis-py's commands). What an app's
own engine logs is the app's choice (docs/security.md): this covers the engines the storage
builds from a URL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shopify_app import ShopifyApp
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from conftest import Awaited, Harness
from shopify_requests import uninstalled, verifying_app, webhook_input
from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session
from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage
from shopify_sessions.testing import FakeShopify
from shopify_sessions.webhooks import receive_webhook, receive_webhook_async

ACCESS, REFRESH = "shpat_LOGGED_ACCESS_0123456789", "shprt_LOGGED_REFRESH_0123456789"


def every_logger_at_debug() -> list[tuple[logging.Logger, int, bool]]:
    """The root and every logger there is now at DEBUG (a level a library pinned included)
    and enabled (a logging configuration with ``disable_existing_loggers``, Django's for
    one, disables the loggers made before it: a test that found no token in a disabled
    logger's records would prove nothing); their levels and states before."""
    loggers = [logging.getLogger(name) for name in ["", *logging.root.manager.loggerDict]]
    before = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    return before


def restore(loggers: list[tuple[logging.Logger, int, bool]]) -> None:
    """Levels and states as :func:`every_logger_at_debug` found them."""
    for logger, level, disabled in loggers:
        logger.setLevel(level)
        logger.disabled = disabled


@pytest.fixture
def debug_everywhere(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # The drivers' loggers exist before the storage runs, so that they are at DEBUG too.
    for name in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "botocore", "redis"):
        logging.getLogger(name)
    before = every_logger_at_debug()
    caplog.set_level(logging.DEBUG)
    yield caplog
    restore(before)


def leaks(records: list[logging.LogRecord], secrets: set[str]) -> list[str]:
    """The records (message and arguments, formatted) that hold a secret."""
    found = []
    for record in records:
        texts = [record.getMessage(), repr(record.args), repr(record.msg)]
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(repr(record.exc_info[1]))
        texts += [repr(value) for value in vars(record).values()]
        text = "\n".join(texts)
        for secret in secrets:
            if secret and secret in text:
                found.append(f"{record.name} {record.levelname}: {secret[:12]}... in {text[:300]}")
    return found


def stored_tokens(session: Session | None) -> set[str]:
    return {t for t in (session.access_token, session.refresh_token) if t} if session else set()


async def test_no_token_or_secret_in_any_record_at_debug(
    tmp_path: Path,
    harness: Harness,
    storage: Any,
    tokens_for: Any,
    fake_shopify: FakeShopify,
    shop: str,
    debug_everywhere: pytest.LogCaptureFixture,
) -> None:
    caplog = debug_everywhere
    every_logger_at_debug()  # again: loggers the storage made, at whatever level it gave them
    secrets = {ACCESS, REFRESH, fake_shopify.client_secret}

    # The storage's own operations.
    user = OnlineAccessInfo(associated_user=AssociatedUser(id=7, email="staff@example.com"))
    online = Session(f"{shop}_7", shop, "", True, access_token=ACCESS + "_online",
                     online_access_info=user)  # fmt: skip
    offline = Session(f"offline_x.{shop}", shop, "", False, access_token=ACCESS,
                      refresh_token=REFRESH, scope="read_products")  # fmt: skip
    secrets.add(online.access_token or "")
    for session in (online, offline):
        await storage.store_session(session)
    assert await storage.load_session(offline.id) == offline
    assert len(await storage.find_sessions_by_shop(shop)) == 2
    renewed = offline.copy()
    renewed.access_token, renewed.refresh_token = ACCESS + "_2", REFRESH + "_2"
    secrets |= stored_tokens(renewed)
    assert await storage.replace_session(renewed, previous=offline) is True
    await storage.delete_sessions([offline.id, online.id])

    # A refresh and an exchange through OfflineTokens, on FakeShopify.
    tokens = tokens_for()
    due = fake_shopify.seed_offline(shop, expires_in=-10)
    secrets |= stored_tokens(due)
    await storage.store_session(due)
    refreshed = await tokens.get(shop)
    secrets |= stored_tokens(refreshed)
    other = shop.replace("shop-", "exchanged-")
    session_token = fake_shopify.session_token(other)
    secrets.add(session_token)
    verified = _verified(fake_shopify, session_token)
    exchanged = await tokens.get_or_exchange(verified)
    secrets |= stored_tokens(exchanged)

    # A signed webhook, verified and applied.
    app = verifying_app(fake_shopify)
    request = webhook_input(fake_shopify, "app/uninstalled", other, uninstalled(other))
    secrets.add(request["headers"]["X-Shopify-Hmac-Sha256"])
    if isinstance(storage, Awaited):
        received = receive_webhook(storage.target, app, request)
    else:
        received = await receive_webhook_async(storage, app, request)
    assert received.result is not None and received.result.effect == "deleted"

    # The command, in this process, on the same table or keys: check, and a copy (which
    # reads every token, writes it to a SQLite file and reads it back) to a file.
    arguments = command_arguments(harness)
    if arguments is not None:
        from shopify_sessions.cli._app import app as command

        url, where = arguments
        copy_where = [f"--source-{where[0].removeprefix('--')}", where[1]]
        target = f"sqlite:///{tmp_path}/copied.sqlite3"
        for run in (["check", "--url", url, *where], ["copy", url, target, *copy_where]):
            done = CliRunner().invoke(command, run)
            assert done.exit_code == 0, done.output
            assert not [secret for secret in secrets if secret in done.output]

    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert leaks(caplog.records, secrets) == []


def _verified(fake: FakeShopify, token: str) -> Any:
    request: Any = {
        "method": "GET",
        "headers": {"Authorization": f"Bearer {token}"},
        "url": "https://app.example/api",
        "body": "",
    }
    app = ShopifyApp(fake.client_id, fake.client_secret)
    result = app.verify_app_home_req(request, app_home_patch_id_token_path="/auth/patch-id-token")
    assert result.ok, result.log
    return result


def command_arguments(harness: Harness) -> tuple[str, list[str]] | None:
    """The URL and the table (or key prefix) option of the test's storage, for the command."""
    backend = harness.backend
    if backend.is_sql:
        return backend.raw_url(harness.sqlite_path), ["--table", harness.table_name]
    if backend.is_redis:
        assert harness.redis_url is not None
        return harness.redis_url, ["--key-prefix", harness.table_name]
    return None


@pytest.mark.parametrize("own_engine", [False, True], ids=["url", "app-engine"])
async def test_aiosqlite_never_logs_parameters_on_the_hot_path_or_an_app_engine(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    own_engine: bool,
) -> None:
    # Only aiosqlite at DEBUG: SQLAlchemy logs nothing, so the storage runs its statements
    # straight on the driver (the hot path), and aiosqlite logs each of them.
    url = f"sqlite+aiosqlite:///{tmp_path}/sessions.sqlite3"
    engine = create_async_engine(url, hide_parameters=True) if own_engine else None
    storage = AsyncSQLAlchemySessionStorage(engine or url)
    await storage.create_table()
    caplog.set_level(logging.WARNING)  # the root: SQLAlchemy logs nothing
    caplog.set_level(logging.DEBUG, logger="aiosqlite")
    monkeypatch.setattr(logging.getLogger("aiosqlite"), "disabled", False)  # see above
    session = Session("offline_a.myshopify.com", "a.myshopify.com", "", False,
                      access_token=ACCESS, refresh_token=REFRESH)  # fmt: skip
    await storage.store_session(session)
    assert await storage.load_session(session.id) == session
    await storage.close()
    if engine is not None:
        await engine.dispose()
    logged = [r for r in caplog.records if r.name == "aiosqlite"]
    assert any("parameters hidden" in r.getMessage() for r in logged)
    assert leaks(logged, {ACCESS, REFRESH}) == []
