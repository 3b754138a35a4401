"""What the storage learns about its database server at first use, and what follows.

Which server it is (PostgreSQL or CockroachDB, MySQL, MariaDB, a MariaDB Galera node), and
whether a connection pooler stands between: a client is told its server process id when
it connects, and asks again with ``pg_backend_pid()``; through PgBouncer, Supavisor or
RDS Proxy the two differ (the pooler answers the first, a server process it picked for
this transaction the second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from ._table import MYSQL


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What was found on the server.

    Attributes:
        product: ``"PostgreSQL"``, ``"CockroachDB"``, ``"MySQL"``, ``"MariaDB"``,
            ``"MariaDB Galera"`` or ``"SQLite"``.
        version: the server's version string.
        pooled: a connection pooler stands between the storage and the server.
    """

    product: str
    version: str
    pooled: bool = False

    @property
    def galera(self) -> bool:
        """A Galera cluster node: row locks and ``GET_LOCK`` are local to the node."""
        return self.product == "MariaDB Galera"


def probe_server(connection: Connection) -> tuple[ServerFacts, bool]:
    """Ask the server behind ``connection`` what it is; and whether the connection's
    driver prepares statements on the server (which a transaction pooler can't keep)."""
    return server_facts(connection), prepares_on_server(connection)


def server_facts(connection: Connection) -> ServerFacts:
    """Ask the server behind ``connection`` what it is."""
    name = connection.dialect.name
    if name == "postgresql":
        pid, version = connection.execute(text("SELECT pg_backend_pid(), version()")).one()
        told = startup_pid(connection.connection.driver_connection)
        return ServerFacts(postgresql_product(version), version, told is not None and told != pid)
    if name in MYSQL:
        version = connection.execute(text("SELECT VERSION()")).scalar_one()
        wsrep = connection.execute(text("SHOW VARIABLES LIKE 'wsrep_on'")).first()
        return ServerFacts(mysql_product(version, wsrep[1] if wsrep else None), version)
    version = connection.execute(text("SELECT sqlite_version()")).scalar_one()
    return ServerFacts("SQLite", version)


def postgresql_product(version: str) -> str:
    """``"CockroachDB"`` or ``"PostgreSQL"``, from what ``version()`` says."""
    return "CockroachDB" if "cockroachdb" in version.lower() else "PostgreSQL"


def mysql_product(version: str, wsrep_on: str | None) -> str:
    """The MySQL-family product, from ``VERSION()`` and the ``wsrep_on`` variable."""
    if "mariadb" not in version.lower():
        return "MySQL"
    return "MariaDB Galera" if (wsrep_on or "").upper() == "ON" else "MariaDB"


def startup_pid(driver_connection: Any) -> int | None:
    """The server process id the driver was told when it connected (psycopg, asyncpg,
    psycopg2), or ``None`` for a driver that doesn't say."""
    info = getattr(driver_connection, "info", None)
    pid = getattr(info, "backend_pid", None)
    if pid is None:
        told = getattr(driver_connection, "get_server_pid", None) or getattr(
            driver_connection, "get_backend_pid", None
        )
        pid = told() if told is not None else None
    return pid if isinstance(pid, int) else None


def prepares_on_server(connection: Connection) -> bool:
    """Whether the driver behind ``connection`` keeps prepared statements on the server:
    psycopg unless ``prepare_threshold`` is ``None``; asyncpg unless SQLAlchemy's cache of
    them is off and each gets a name of its own (``pooler_engine_options``)."""
    driver = connection.connection.driver_connection
    if connection.dialect.driver == "psycopg":
        return getattr(driver, "prepare_threshold", None) is not None
    if connection.dialect.driver == "asyncpg":
        adapted = connection.connection.dbapi_connection
        cached = getattr(adapted, "_prepared_statement_cache", None) is not None
        default = getattr(adapted, "_default_name_func", None)
        return cached or getattr(adapted, "_prepared_statement_name_func", None) == default
    return False
