"""What the storage makes of the server it finds, and the lease statements of each dialect
(no I/O)."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData
from sqlalchemy.dialects import mysql, postgresql

from shopify_sessions._locks import check_lease
from shopify_sessions.sqlalchemy import session_lock_table
from shopify_sessions.sqlalchemy._locks import lease_statements
from shopify_sessions.sqlalchemy._server import ServerFacts, mysql_product, postgresql_product


@pytest.mark.parametrize(
    ("version", "product"),
    [
        ("PostgreSQL 15.19 (Debian 15.19-0+deb12u1) on x86_64-pc-linux-gnu", "PostgreSQL"),
        ("CockroachDB CCL v25.4.0 (x86_64-pc-linux-gnu, built 2026/10/01, go1.23)", "CockroachDB"),
        ("CockroachDB OSS v21.2.17 (aarch64-unknown-linux-gnu)", "CockroachDB"),
    ],
)
def test_postgresql_products(version: str, product: str) -> None:
    assert postgresql_product(version) == product


@pytest.mark.parametrize(
    ("version", "wsrep_on", "product"),
    [
        ("10.11.19-MariaDB-0+deb12u1", "OFF", "MariaDB"),
        ("10.11.19-MariaDB-0+deb12u1", "ON", "MariaDB Galera"),
        ("11.4.3-MariaDB-log", None, "MariaDB"),
        ("8.0.39", None, "MySQL"),
        ("8.0.39-30.1 Percona XtraDB Cluster", "ON", "MySQL"),
    ],
)
def test_mysql_products(version: str, wsrep_on: str | None, product: str) -> None:
    assert mysql_product(version, wsrep_on) == product
    assert ServerFacts(product, version).galera is (product == "MariaDB Galera")


def test_the_postgresql_lease_is_one_statement_each_way() -> None:
    table = session_lock_table(MetaData(), "session_locks", schema="app")
    statements = lease_statements(table, postgresql.dialect(), galera=False)
    take = str(statements.take)
    assert take.startswith("INSERT INTO app.session_locks AS held (id, owner, expires)")
    assert "ON CONFLICT (id) DO UPDATE" in take and "RETURNING" in take
    assert "held.expires <= now() OR held.owner = EXCLUDED.owner" in take
    assert statements.take_over is None
    assert str(statements.release) == (
        "DELETE FROM app.session_locks WHERE id = :id AND owner = :owner"
    )


@pytest.mark.parametrize("galera", [False, True])
def test_the_mysql_lease_waits_for_the_cluster_on_galera(galera: bool) -> None:
    table = session_lock_table(MetaData(), "Session_locks")
    statements = lease_statements(table, mysql.dialect(), galera=galera)
    assert statements.take_over is not None
    causal = "SET STATEMENT wsrep_sync_wait = 6 FOR "
    for statement in (statements.take, statements.take_over):
        assert str(statement).startswith(causal) is galera
    assert "UTC_TIMESTAMP(6)" in str(statements.take_over)  # never the session's time zone
    assert not str(statements.release).startswith(causal)


@pytest.mark.parametrize("seconds", [0, 0.5, -1, float("inf"), float("nan"), "10", True])
def test_a_lease_lasts_a_second_or_more(seconds: object) -> None:
    with pytest.raises(ValueError, match="lock_lease"):
        check_lease(seconds)
    assert check_lease(1) == 1.0
