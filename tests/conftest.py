"""The backend matrix: every storage x driver, sync and async, each test with its own table.

Servers come from TEST_POSTGRESQL_URL, TEST_MYSQL_URL and TEST_REDIS_URL (defaults: this
project's machines); the pooled backends reach that PostgreSQL through a PgBouncer the tests
start (tests/pgbouncer.py), the Redis Cluster is started by the tests
(tests/redis_cluster.py), and so is DynamoDB: npm's dynalite (tests/dynalite.py). An
unreachable server skips its tests, unless SHOPIFY_SESSIONS_REQUIRE_SERVERS (or CI) is set:
then it fails them, so a CI run cannot pass by skipping.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import dynalite as dynalite_module
from dynalite import Dynalite
from galera import GaleraPair
from galera import missing as galera_missing
from pgbouncer import PgBouncer
from pgbouncer import missing as pgbouncer_missing
from redis_cluster import RedisCluster, cluster_unavailable, start_cluster
from shopify_sessions import AsyncMemorySessionStorage, MemorySessionStorage
from shopify_sessions.sqlalchemy import (
    AsyncSQLAlchemySessionStorage,
    SQLAlchemySessionStorage,
    pooler_engine_options,
    session_table,
)
from shopify_sessions.testing import FakeShopify

POSTGRESQL_URL = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVERS = bool(os.environ.get("SHOPIFY_SESSIONS_REQUIRE_SERVERS") or os.environ.get("CI"))


@dataclass(frozen=True)
class Backend:
    """One storage x driver of the matrix."""

    name: str
    server: str  # "memory", "sqlite", "postgresql", "mysql", "redis", "redis-cluster", "dynamodb"
    driver: str | None  # SQLAlchemy driver name; None for memory, Redis and DynamoDB
    is_async: bool
    #: "pgbouncer": PostgreSQL through the tests' PgBouncer in transaction mode;
    #: "pgbouncer-session": the same in session mode; "galera": the nodes of the tests'
    #: two-node MariaDB Galera cluster.
    via: str | None = None

    @property
    def is_sql(self) -> bool:
        return self.driver is not None

    @property
    def is_redis(self) -> bool:
        return self.server in REDIS_SERVERS

    @property
    def is_dynamodb(self) -> bool:
        return self.server == "dynamodb"

    def url(self, sqlite_path: Path, node: int = 0) -> str:
        """This backend's URL (for SQL backends); ``node`` picks a Galera node (0 or 1)."""
        if self.server == "sqlite":
            return f"sqlite+{self.driver}:///{sqlite_path}"
        if self.via == "pgbouncer":
            return f"{pgbouncer('transaction').url_for(str(self.driver))}?pooler=transaction"
        if self.via == "pgbouncer-session":  # nothing to say: session mode keeps state
            return pgbouncer("session").url_for(str(self.driver))
        if self.via == "galera":
            base = galera_pair().urls[node % 2]
        else:
            base = POSTGRESQL_URL if self.server == "postgresql" else MYSQL_URL
        url = make_url(base)
        return url.set(drivername=f"{url.get_backend_name()}+{self.driver}").render_as_string(
            hide_password=False
        )

    @property
    def nodes(self) -> int:
        """How many servers (cluster nodes) the backend's URLs reach."""
        return 2 if self.via == "galera" else 1

    def raw_url(self, sqlite_path: Path) -> str:
        """A synchronous URL to the same database (direct, not through PgBouncer), for
        tests that look at rows directly."""
        sync_driver = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql"}
        via = "galera" if self.via == "galera" else None
        return Backend(self.name, self.server, sync_driver[self.server], False, via).url(
            sqlite_path
        )


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
#: Direct connections: every backend and driver, each once.
SQL_BACKENDS = [b for b in BACKENDS if b.is_sql]
SERVER_BACKENDS = [b for b in BACKENDS if b.server in ("postgresql", "mysql")]
#: PostgreSQL through PgBouncer in transaction mode, as Supabase's and Neon's pooled URLs
#: reach it (``?pooler=transaction``): the battery, lock and lifecycle tests run here too.
POOLED_BACKENDS = [
    Backend("psycopg-pgbouncer", "postgresql", "psycopg", False, "pgbouncer"),
    Backend("psycopg-async-pgbouncer", "postgresql", "psycopg", True, "pgbouncer"),
    Backend("asyncpg-pgbouncer", "postgresql", "asyncpg", True, "pgbouncer"),
]
BACKENDS += POOLED_BACKENDS
#: PgBouncer in session mode (each client connection has a server connection of its own
#: while it lasts): the lock tests.
SESSION_POOLED_BACKENDS = [
    Backend("psycopg-pgbouncer-session", "postgresql", "psycopg", False, "pgbouncer-session"),
    Backend("asyncpg-pgbouncer-session", "postgresql", "asyncpg", True, "pgbouncer-session"),
]
#: The two nodes of a MariaDB Galera cluster: the lock tests and the hammer, with their
#: workers split across the nodes.
GALERA_BACKENDS = [
    Backend("pymysql-galera", "mysql", "pymysql", False, "galera"),
    Backend("aiomysql-galera", "mysql", "aiomysql", True, "galera"),
]
#: Redis: the machine's server, and a cluster of three masters the tests start.
REDIS_SERVERS = ("redis", "redis-cluster")
REDIS_BACKENDS = [
    Backend("redis", "redis", None, False),
    Backend("redis-async", "redis", None, True),
    Backend("redis-cluster", "redis-cluster", None, False),
    Backend("redis-cluster-async", "redis-cluster", None, True),
]
BACKENDS += REDIS_BACKENDS
#: DynamoDB: the tests' own dynalite, through boto3 and aiobotocore.
DYNAMODB_BACKENDS = [
    Backend("dynamodb", "dynamodb", None, False),
    Backend("dynamodb-async", "dynamodb", None, True),
]
BACKENDS += DYNAMODB_BACKENDS


@functools.cache
def server_unreachable(server: str) -> str | None:
    """Why ``server`` cannot be reached (three tries over ~30 s), or None when it can."""
    if server in ("memory", "sqlite"):
        return None
    if server == "redis":
        return redis_unreachable(REDIS_URL)
    if server == "redis-cluster":
        return cluster_unavailable()
    if server == "dynamodb":
        return dynalite_module.missing()
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


def require_backend(backend: Backend) -> None:
    """:func:`require_server` for the backend's server, and its PgBouncer or Galera pair."""
    require_server(backend.server)
    if backend.via == "pgbouncer":
        pgbouncer("transaction")
    elif backend.via == "pgbouncer-session":
        pgbouncer("session")
    elif backend.via == "galera":
        galera_pair()


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVERS:
        pytest.fail(f"{reason} (required: SHOPIFY_SESSIONS_REQUIRE_SERVERS or CI is set)")
    pytest.skip(reason)


_POOLERS: dict[str, PgBouncer] = {}


def pgbouncer(pool_mode: str) -> PgBouncer:
    """The tests' PgBouncer in ``pool_mode`` before the test PostgreSQL: started at first
    use, stopped at the end of the run. Skips (fails, when servers are required) without it."""
    if pool_mode not in _POOLERS:
        require_server("postgresql")
        reason = pgbouncer_missing()
        if reason is not None:
            _unavailable(reason)
        # Transaction mode shares 4 server connections among every client, as a busy
        # host does; session mode gives each client connection one for its lifetime.
        size = 4 if pool_mode == "transaction" else 40
        _POOLERS[pool_mode] = PgBouncer(POSTGRESQL_URL, pool_mode, pool_size=size)
    return _POOLERS[pool_mode]


_GALERA: list[GaleraPair] = []
_DYNALITE: list[Dynalite] = []


def dynalite() -> Dynalite:
    """The tests' dynalite: started at first use, stopped at the end of the run. Skips
    (fails, when servers are required) without Node.js or the npm packages."""
    if not _DYNALITE:
        reason = dynalite_module.missing()
        if reason is not None:
            _unavailable(reason)
        _DYNALITE.append(Dynalite())
    return _DYNALITE[0]


def galera_pair() -> GaleraPair:
    """The tests' two-node MariaDB Galera cluster: started at first use (about 15 s),
    stopped at the end of the run. Skips (fails, when servers are required) without it."""
    if not _GALERA:
        reason = galera_missing()
        if reason is not None:
            _unavailable(reason)
        _GALERA.append(GaleraPair())
    return _GALERA[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``), the Galera tests go to one worker, so
    that one Galera pair forms (about 15 s, two mariadbd), not one per worker. PgBouncer
    and the Redis Cluster start in a second: each worker starts its own."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        backends = [
            v for v in (callspec.params.values() if callspec else ()) if isinstance(v, Backend)
        ]
        if any(backend.via == "galera" for backend in backends):
            item.add_marker(pytest.mark.xdist_group("galera"))


@pytest.fixture(scope="session", autouse=True)
def _stop_servers_we_started() -> Iterator[None]:
    yield
    while _POOLERS:
        _POOLERS.popitem()[1].close()
    while _GALERA:
        _GALERA.pop().close()
    while _DYNALITE:
        _DYNALITE.pop().close()


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


@contextmanager
def dynamodb_app_url() -> Iterator[str]:
    """A ``dynamodb://`` URL of a fresh table in the tests' dynalite, as an app is given it:
    dynalite's credentials in the environment (as a Lambda function finds its role's), the
    table deleted afterwards if the app made it."""
    require_server("dynamodb")
    server, name = dynalite(), unique_table_name("app")
    saved = {key: os.environ.get(key) for key in dynalite_module.CREDENTIALS_ENV}
    os.environ.update(dynalite_module.CREDENTIALS_ENV)
    try:
        yield server.url(name)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        client = server.client()
        if name in client.list_tables()["TableNames"]:
            client.delete_table(TableName=name)
        client.close()


@dataclass
class Harness:
    """A backend, a fresh table name, and ways to make storages and look at rows."""

    backend: Backend
    sqlite_path: Path
    table_name: str
    raw: Engine | None = None
    #: The Redis URL of a Redis backend (with ``?cluster=true`` for the cluster).
    redis_url: str | None = None
    #: A PostgreSQL schema (MySQL: database) of the test's own, for a table whose name is
    #: fixed (Prisma's "Session"), so that tests running at once never share it.
    schema: str | None = None
    #: The DynamoDB tables the test made (deleted afterwards).
    dynamodb_tables: list[str] = field(default_factory=list)
    #: (name, schema) of every table to drop after the test; the default one is first.
    tables: list[tuple[str, str | None]] = field(default_factory=list)
    _closers: list[Callable[[], Any]] = field(default_factory=list)
    _peek: Any = None

    def storage(self, *, node: int = 0, **options: Any) -> Any:
        """A storage of this backend (awaitable methods, sync or not) with ``options``;
        ``node`` picks the Galera node it connects to."""
        if self.backend.is_redis:
            return self.redis_storage(**options)
        if self.backend.is_dynamodb:
            return self.dynamodb_storage(**options)
        if not self.backend.is_sql:
            memory = (
                AsyncMemorySessionStorage() if self.backend.is_async else MemorySessionStorage()
            )
            return memory if self.backend.is_async else Awaited(memory)
        # Built from the URL, as the README shows: the storage owns its engine.
        url = self.backend.url(self.sqlite_path, node)
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

    def dynamodb_storage(self, *, endpoint: str | None = None, **options: Any) -> Any:
        """A DynamoDB storage on the test's own table, created at the first call (``table=``
        is dropped: SQL only); ``endpoint`` puts a proxy of tests/dynalite.py before it."""
        from shopify_sessions.dynamodb import AsyncDynamoDBSessionStorage, DynamoDBSessionStorage

        options.pop("table", None)
        name = options.pop("table_name", self.table_name)
        server = dynalite()
        settings = {
            "endpoint_url": endpoint or server.endpoint,
            "region_name": dynalite_module.REGION,
            "client_options": {**dynalite_module.CREDENTIALS, **options.pop("client_options", {})},
            **options,
        }
        if name not in self.dynamodb_tables:
            creator = DynamoDBSessionStorage(
                name,
                endpoint_url=server.endpoint,
                region_name=dynalite_module.REGION,
                client_options=dynalite_module.CREDENTIALS,
            )
            creator.create_table()
            creator.close()
            self.dynamodb_tables.append(name)
        if self.backend.is_async:
            storage = AsyncDynamoDBSessionStorage(name, **settings)
            self._closers.append(storage.close)
            return storage
        sync_storage = DynamoDBSessionStorage(name, **settings)
        self._closers.append(sync_storage.close)
        return Awaited(sync_storage)

    def dynamodb_client(self) -> Any:
        """A boto3 client of the tests' dynalite (to look at items directly)."""
        client = dynalite().client()
        self._closers.append(client.close)
        return client

    def redis_client(self) -> Any:
        """A synchronous redis-py client of the backend's Redis (or cluster), closed later."""
        from shopify_sessions.redis._client import client_from_url, close_client

        assert self.redis_url is not None
        client = client_from_url(self.redis_url, is_async=False, options=None)
        self._closers.append(lambda: close_client(client))
        return client

    def peek_client(self) -> Any:
        """One Redis (or DynamoDB) client of the harness to look at keys (or items) with,
        made at the first call: a property test looks after each of its examples."""
        if self._peek is None:
            self._peek = self.redis_client() if self.backend.is_redis else self.dynamodb_client()
        return self._peek

    def engine_storage(self, **options: Any) -> Any:
        """A storage on an Engine the test built (transactional, SQLAlchemy's defaults; made
        for the pooler, through PgBouncer, as pooler_engine_options says)."""
        url = make_url(self.backend.url(self.sqlite_path)).difference_update_query(["pooler"])
        engine_options = pooler_engine_options(url) if self.backend.via else {}
        if self.backend.is_async:
            engine = create_async_engine(url, **engine_options)
            self._closers.append(engine.dispose)
            return AsyncSQLAlchemySessionStorage(engine, **options)
        sync_engine = create_engine(url, **engine_options)
        self._closers.append(sync_engine.dispose)
        return Awaited(SQLAlchemySessionStorage(sync_engine, **options))

    def default_table(self, name: str | None = None, schema: str | None = None) -> Table:
        """The default table layout under ``name`` (the test's own by default), dropped later."""
        name = name or self.table_name
        self.drop_later(name, schema)
        self.drop_later(f"{name}_locks", schema)
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


def tampered(value: str) -> Iterator[str]:
    """``value`` with one character changed, at every position, two ways: to another
    letter, and with the low bit of its code flipped (what a flipped bit on disk does)."""
    for index, character in enumerate(value):
        for other in ("A" if character != "A" else "B", chr(ord(character) ^ 1)):
            yield value[:index] + other + value[index + 1 :]


def stored_entries(harness: Harness, storage: Any) -> list[Any]:
    """What the backend holds under the test's table or key prefix (ids, keys other than the
    Node migration record, items), read around the storage: to see that nothing was left."""
    backend = harness.backend
    if backend.is_sql:
        return harness.sql(f"SELECT id FROM {harness.quote(harness.table_name)}")
    if backend.is_redis:
        client = harness.peek_client()
        pattern = harness.table_name.replace("_", "[_]") + "*"
        keys = [key for key in client.scan_iter(match=pattern) if not key.endswith("_migrations")]
        return sorted(keys)
    if backend.is_dynamodb:
        items: list[Any] = harness.peek_client().scan(TableName=harness.table_name)["Items"]
        return items
    memory = storage.target if isinstance(storage, Awaited) else storage._storage
    return list(memory._sessions)


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    require_backend(backend)
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


@pytest.fixture(params=DYNAMODB_BACKENDS, ids=lambda b: b.name)
def dynamodb_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    require_server(backend.server)
    return backend


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
    """Dispose of the harness's engines and drop the tables (or Redis keys) its test made."""
    if harness.backend.is_redis:
        drop_redis_keys(harness)
    if harness.dynamodb_tables:
        client = dynalite().client()
        for table in harness.dynamodb_tables:
            client.delete_table(TableName=table)
        client.close()
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
async def dynamodb_harness(dynamodb_backend: Backend, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = new_harness(dynamodb_backend, tmp_path)
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


# --- the token lifecycle: FakeShopify, and OfflineTokens on every backend ---------------
# The plugin of shopify_sessions.testing gives ``fake_shopify`` (reset for each test) and
# ``fake_shopify_server`` (the session's one server, never reset by itself).


@pytest.fixture(scope="session")
def standin(fake_shopify_server: FakeShopify) -> FakeShopify:
    """The older name of ``fake_shopify_server``: the same server, not reset by itself."""
    return fake_shopify_server


@pytest.fixture
def shop() -> str:
    """A shop domain of the test's own."""
    return f"shop-{uuid.uuid4().hex[:10]}.myshopify.com"


@pytest.fixture
async def tokens_for(fake_shopify: FakeShopify, storage: Any) -> AsyncIterator[Callable[..., Any]]:
    """Makes OfflineTokens (awaitable methods) on the battery's storage, routed to FakeShopify."""
    from shopify_sessions.tokens import AsyncOfflineTokens, OfflineTokens

    closers: list[Any] = []

    def make(**options: Any) -> Any:
        options = {
            "client_id": fake_shopify.client_id,
            "client_secret": fake_shopify.client_secret,
            **options,
        }
        if isinstance(storage, Awaited):
            client = fake_shopify.http_client()
            closers.append(client.close)
            return Awaited(OfflineTokens(storage.target, http_client=client, **options))
        async_client = fake_shopify.async_http_client()
        closers.append(async_client.aclose)
        return AsyncOfflineTokens(storage, http_client=async_client, **options)

    yield make
    for close in closers:
        result = close()
        if result is not None:
            await result
