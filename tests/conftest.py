"""The backend matrix: every storage x driver, sync and async, each test with its own table
(or, on Redis, its own key prefix).

Servers come from TEST_POSTGRESQL_URL, TEST_MYSQL_URL and TEST_REDIS_URL (defaults: this
project's machines); the Redis Cluster is started by the tests (tests/redis_cluster.py).
An unreachable server skips its tests, unless SHOPIFY_SESSIONS_REQUIRE_SERVERS (or CI) is
set: then it fails them, so a CI run cannot pass by skipping.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from redis_cluster import RedisCluster, cluster_unavailable, start_cluster
from shopify_sessions import AsyncMemorySessionStorage, MemorySessionStorage
from shopify_sessions.sqlalchemy import (
    AsyncSQLAlchemySessionStorage,
    SQLAlchemySessionStorage,
    session_table,
)
from standin import CLIENT_ID, CLIENT_SECRET
from standin_client import StandIn

POSTGRESQL_URL = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVERS = bool(os.environ.get("SHOPIFY_SESSIONS_REQUIRE_SERVERS") or os.environ.get("CI"))


@dataclass(frozen=True)
class Backend:
    """One storage x driver of the matrix."""

    name: str
    server: str  # "memory", "sqlite", "postgresql", "mysql", "redis" or "redis-cluster"
    driver: str | None  # SQLAlchemy driver name; None for memory and Redis
    is_async: bool

    @property
    def is_sql(self) -> bool:
        return self.driver is not None

    @property
    def is_redis(self) -> bool:
        return self.server in REDIS_SERVERS

    def url(self, sqlite_path: Path) -> str:
        """This backend's URL (for SQL backends)."""
        if self.server == "sqlite":
            return f"sqlite+{self.driver}:///{sqlite_path}"
        base = POSTGRESQL_URL if self.server == "postgresql" else MYSQL_URL
        url = make_url(base)
        return url.set(drivername=f"{url.get_backend_name()}+{self.driver}").render_as_string(
            hide_password=False
        )

    def raw_url(self, sqlite_path: Path) -> str:
        """A synchronous URL to the same database, for tests that look at rows directly."""
        sync_driver = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql"}
        return Backend(self.name, self.server, sync_driver[self.server], False).url(sqlite_path)


BACKENDS = [
    Backend("memory", "memory", None, False),
    Backend("memory-async", "memory", None, True),
    Backend("sqlite3", "sqlite", "pysqlite", False),
    Backend("aiosqlite", "sqlite", "aiosqlite", True),
    Backend("psycopg", "postgresql", "psycopg", False),
    Backend("asyncpg", "postgresql", "asyncpg", True),
    Backend("pymysql", "mysql", "pymysql", False),
    Backend("aiomysql", "mysql", "aiomysql", True),
]
# --- Redis: the machine's server, and a cluster of three masters the tests start ---------
REDIS_SERVERS = ("redis", "redis-cluster")
REDIS_BACKENDS = [
    Backend("redis", "redis", None, False),
    Backend("redis-async", "redis", None, True),
    Backend("redis-cluster", "redis-cluster", None, False),
    Backend("redis-cluster-async", "redis-cluster", None, True),
]
BACKENDS += REDIS_BACKENDS
SQL_BACKENDS = [b for b in BACKENDS if b.is_sql]
SERVER_BACKENDS = [b for b in BACKENDS if b.server in ("postgresql", "mysql")]


@functools.cache
def server_unreachable(server: str) -> str | None:
    """Why ``server`` cannot be reached (three tries over ~30 s), or None when it can."""
    if server in ("memory", "sqlite"):
        return None
    if server == "redis":
        return redis_unreachable(REDIS_URL)
    if server == "redis-cluster":
        return cluster_unavailable()
    url = make_url(POSTGRESQL_URL if server == "postgresql" else MYSQL_URL)
    driver = "psycopg" if server == "postgresql" else "pymysql"
    engine = create_engine(
        url.set(drivername=f"{url.get_backend_name()}+{driver}"),
        connect_args={"connect_timeout": 10},
        poolclass=NullPool,
    )
    reason = None
    for attempt in range(3):
        try:
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            return None
        except Exception as error:
            reason = f"{server} at {url} is unreachable: {error.__class__.__name__}: {error}"
            time.sleep(attempt)
    engine.dispose()
    return reason


def require_server(server: str) -> None:
    """Skip (or, when servers are required, fail) a test whose server is unreachable."""
    reason = server_unreachable(server)
    if reason is not None:
        if REQUIRE_SERVERS:
            pytest.fail(f"{reason} (required: SHOPIFY_SESSIONS_REQUIRE_SERVERS or CI is set)")
        pytest.skip(reason)


def redis_unreachable(url: str) -> str | None:
    """Why the Redis at ``url`` cannot be reached, or None when it answers a PING."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    reason = None
    for attempt in range(3):
        try:
            client.ping()
            client.close()
            return None
        except redis.RedisError as error:
            reason = f"Redis at {url} is unreachable: {error.__class__.__name__}: {error}"
            time.sleep(attempt)
    client.close()
    return reason


class Awaited:
    """A sync storage with awaitable methods, so one async battery tests both kinds."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.target, name)
        if not callable(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attribute(*args, **kwargs)

        return call


def unique_table_name(prefix: str = "s") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass
class Harness:
    """A backend, a fresh table name, and ways to make storages and look at rows."""

    backend: Backend
    sqlite_path: Path
    table_name: str
    raw: Engine | None = None
    #: The Redis URL of a Redis backend (with ``?cluster=true`` for the cluster).
    redis_url: str | None = None
    #: (name, schema) of every table to drop after the test; the default one is first.
    tables: list[tuple[str, str | None]] = field(default_factory=list)
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    def storage(self, **options: Any) -> Any:
        """A storage of this backend (awaitable methods, sync or not) with ``options``."""
        if self.backend.is_redis:
            return self.redis_storage(**options)
        if not self.backend.is_sql:
            memory = (
                AsyncMemorySessionStorage() if self.backend.is_async else MemorySessionStorage()
            )
            return memory if self.backend.is_async else Awaited(memory)
        # Built from the URL, as the README shows: the storage owns its engine.
        url = self.backend.url(self.sqlite_path)
        if self.backend.is_async:
            storage = AsyncSQLAlchemySessionStorage(url, **options)
            self._closers.append(storage.close)
            return storage
        sync_storage = SQLAlchemySessionStorage(url, **options)
        self._closers.append(sync_storage.close)
        return Awaited(sync_storage)

    def redis_storage(self, **options: Any) -> Any:
        """A Redis storage on the test's own key prefix (``table=`` is dropped: SQL only)."""
        from shopify_sessions.redis import AsyncRedisSessionStorage, RedisSessionStorage

        options.pop("table", None)
        options.setdefault("key_prefix", self.table_name)
        assert self.redis_url is not None
        if self.backend.is_async:
            storage = AsyncRedisSessionStorage(self.redis_url, **options)
            self._closers.append(storage.close)
            return storage
        sync_storage = RedisSessionStorage(self.redis_url, **options)
        self._closers.append(sync_storage.close)
        return Awaited(sync_storage)

    def redis_client(self) -> Any:
        """A synchronous redis-py client of the backend's Redis (or cluster), closed later."""
        from shopify_sessions.redis._client import client_from_url, close_client

        assert self.redis_url is not None
        client = client_from_url(self.redis_url, is_async=False, options=None)
        self._closers.append(lambda: close_client(client))
        return client

    def engine_storage(self, **options: Any) -> Any:
        """A storage on an Engine the test built (transactional, SQLAlchemy's defaults)."""
        url = self.backend.url(self.sqlite_path)
        if self.backend.is_async:
            engine = create_async_engine(url)
            self._closers.append(engine.dispose)
            return AsyncSQLAlchemySessionStorage(engine, **options)
        sync_engine = create_engine(url)
        self._closers.append(sync_engine.dispose)
        return Awaited(SQLAlchemySessionStorage(sync_engine, **options))

    def default_table(self, name: str | None = None, schema: str | None = None) -> Table:
        """The default table layout under ``name`` (the test's own by default), dropped later."""
        name = name or self.table_name
        self.drop_later(name, schema)
        return session_table(MetaData(), name, schema=schema)

    def drop_later(self, name: str, schema: str | None = None) -> str:
        """Remember to drop table ``name`` after the test; returns ``name``."""
        self.tables.append((name, schema))
        return name

    def sql(self, statement: str, **parameters: Any) -> list[Any]:
        """Run raw SQL on the backend's database (committed); rows if any."""
        assert self.raw is not None
        with self.raw.begin() as connection:
            result = connection.execute(text(statement), parameters)
            return list(result) if result.returns_rows else []

    def quote(self, name: str) -> str:
        assert self.raw is not None
        return str(self.raw.dialect.identifier_preparer.quote(name))


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    require_server(backend.server)
    return backend


@pytest.fixture(params=REDIS_BACKENDS, ids=lambda b: b.name)
def redis_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    require_server(backend.server)
    return backend


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """Three Redis masters on free ports, in temporary directories, stopped at the end."""
    with start_cluster() as cluster:
        yield cluster


def redis_url_of(backend: Backend, request: pytest.FixtureRequest) -> str | None:
    """The Redis URL of ``backend`` (the cluster is started at its first use)."""
    if backend.server == "redis":
        return REDIS_URL
    if backend.server == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    return None


@pytest.fixture(params=SQL_BACKENDS, ids=lambda b: b.name)
def sql_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    require_server(backend.server)
    return backend


@pytest.fixture(params=SERVER_BACKENDS, ids=lambda b: b.name)
def server_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    require_server(backend.server)
    return backend


def new_harness(backend: Backend, tmp_path: Path, redis_url: str | None = None) -> Harness:
    """A harness with a fresh table name; pair it with :func:`close_harness`."""
    harness = Harness(backend, tmp_path / "sessions.sqlite3", unique_table_name())
    if backend.is_sql:
        harness.raw = create_engine(backend.raw_url(harness.sqlite_path))
    harness.redis_url = redis_url
    return harness


async def close_harness(harness: Harness) -> None:
    """Dispose of the harness's engines and drop the tables its test made."""
    if harness.backend.is_redis:
        drop_redis_keys(harness)
    for close in reversed(harness._closers):
        result = close()
        if hasattr(result, "__await__"):
            await result
    if harness.raw is None:
        return
    if harness.backend.server != "sqlite":  # sqlite files go with tmp_path
        with harness.raw.begin() as connection:
            for name, schema in harness.tables:
                qualified = harness.quote(name)
                if schema is not None:
                    qualified = f"{harness.quote(schema)}.{qualified}"
                connection.execute(text(f"DROP TABLE IF EXISTS {qualified}"))
    harness.raw.dispose()


def drop_redis_keys(harness: Harness) -> None:
    """Delete every key under the test's prefix (sessions, shop lists, locks, record)."""
    client = harness.redis_client()
    pattern = harness.table_name.replace("_", "[_]") + "*"
    for key in list(client.scan_iter(match=pattern, count=1000)):
        client.delete(key)


@pytest.fixture
async def harness(
    backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    harness = new_harness(backend, tmp_path, redis_url_of(backend, request))
    yield harness
    await close_harness(harness)


@pytest.fixture
async def redis_harness(
    redis_backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    harness = new_harness(redis_backend, tmp_path, redis_url_of(redis_backend, request))
    yield harness
    await close_harness(harness)


@pytest.fixture
async def sql_harness(sql_backend: Backend, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = new_harness(sql_backend, tmp_path)
    yield harness
    await close_harness(harness)


@pytest.fixture
async def server_harness(server_backend: Backend, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = new_harness(server_backend, tmp_path)
    yield harness
    await close_harness(harness)


@pytest.fixture
async def storage(harness: Harness) -> Any:
    """The battery's storage: the default table layout under a unique name, created (on
    Redis: the test's own key prefix)."""
    if not harness.backend.is_sql:
        return harness.storage()
    storage = harness.storage(table=harness.default_table())
    await storage.create_table()
    return storage


# --- the token lifecycle: a Shopify stand-in, and OfflineTokens on every backend ---------


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    """The strict Shopify stand-in (tests/standin.py), in a process of its own."""
    server = StandIn()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def shop() -> str:
    """A shop domain of the test's own."""
    return f"shop-{uuid.uuid4().hex[:10]}.myshopify.com"


@pytest.fixture
async def tokens_for(standin: StandIn, storage: Any) -> AsyncIterator[Callable[..., Any]]:
    """Makes OfflineTokens (awaitable methods) on the battery's storage, routed to the stand-in."""
    from shopify_sessions.shopify_app import AsyncOfflineTokens, OfflineTokens

    standin.reset()
    closers: list[Any] = []

    def make(**options: Any) -> Any:
        options = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **options}
        if isinstance(storage, Awaited):
            client = standin.client()
            closers.append(client.close)
            return Awaited(OfflineTokens(storage.target, http_client=client, **options))
        async_client = standin.async_client()
        closers.append(async_client.aclose)
        return AsyncOfflineTokens(storage, http_client=async_client, **options)

    yield make
    for close in closers:
        result = close()
        if result is not None:
            await result
