"""Property-based, on every backend and driver: any valid session round-trips exactly; and
any text at all, in every field and lookup, round-trips or is refused, typed.

Arbitrary Unicode, lone surrogates (what ``surrogateescape`` makes of bytes that are not
UTF-8), NUL and long strings: each store either round-trips exactly or is refused with
``InvalidSessionError``, and a refused one leaves nothing behind. What is refused is the
same everywhere (see docs/security.md): text UTF-8 cannot encode, on every backend; NUL on
PostgreSQL only, whose text cannot hold it; an id longer than MySQL's ``VARCHAR(255)``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Backend, Harness, close_harness, new_harness, redis_url_of, stored_entries
from shopify_sessions import AssociatedUser, InvalidSessionError, OnlineAccessInfo, Session

UTC = timezone.utc
ids = itertools.count()


def text(backend: Backend, max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """Unicode of every plane; PostgreSQL text cannot hold NUL (refused as invalid input)."""
    excluded = "\x00" if backend.server == "postgresql" else ""
    alphabet = st.characters(exclude_categories=("Cs",), exclude_characters=excluded)
    return st.text(alphabet, min_size=min_size, max_size=max_size)


def moments(backend: Backend) -> st.SearchStrategy[datetime]:
    """Every instant the default table's column holds, to the millisecond."""
    low = datetime(1000, 1, 1) if backend.server == "mysql" else datetime(1, 1, 2)
    naive = st.datetimes(min_value=low, max_value=datetime(9999, 12, 30))
    return naive.map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))


def sessions(backend: Backend) -> st.SearchStrategy[Session]:
    optional_text = st.none() | text(backend, 40)
    users = st.builds(
        AssociatedUser,
        id=st.none() | st.integers(0, 2**63 - 1),
        first_name=optional_text,
        last_name=optional_text,
        email=optional_text,
        email_verified=st.none() | st.booleans(),
        account_owner=st.none() | st.booleans(),
        locale=optional_text,
        collaborator=st.none() | st.booleans(),
    )
    return st.builds(
        _session,
        suffix=text(backend, 60),
        # DynamoDB refuses an empty string as an index key (the shop); so does the storage.
        shop=text(backend, 80, min_size=1 if backend.is_dynamodb else 0),
        state=text(backend, 40),
        is_online=st.booleans(),
        scope=st.none() | text(backend, 10_000),
        expires=st.none() | moments(backend),
        access_token=st.none() | text(backend, 10_000).filter(bool),
        refresh_token=st.none() | text(backend, 10_000),
        refresh_token_expires=st.none() | moments(backend),
        user=users,
    )


def _session(suffix: str, is_online: bool, user: AssociatedUser, **fields: Any) -> Session:
    info = OnlineAccessInfo(associated_user=user) if is_online else None
    return Session(f"{next(ids)}:{suffix}", is_online=is_online, online_access_info=info, **fields)


@pytest.fixture
def run(
    backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """Call a storage method and wait for it: one event loop for the whole test."""
    loop = asyncio.new_event_loop()
    harness = new_harness(backend, tmp_path, redis_url_of(backend, request))

    async def open_storage() -> Any:
        if not backend.is_sql:
            return harness.storage()
        storage = harness.storage(table=harness.default_table())
        await storage.create_table()
        return storage

    storage = loop.run_until_complete(open_storage())
    yield lambda method, *args: loop.run_until_complete(getattr(storage, method)(*args))
    loop.run_until_complete(close_harness(harness))
    loop.close()


def as_written(session: Session) -> Session:
    """``session`` as the SQL storages write it: like Drizzle and Prisma (``value || null``),
    an empty optional string or user id 0 is stored as NULL, and so reads back as None."""
    copy = session.copy()
    copy.scope = copy.scope or None
    copy.refresh_token = copy.refresh_token or None
    if copy.online_access_info is not None:
        user = copy.online_access_info.associated_user
        for name in ("id", "first_name", "last_name", "email", "locale"):
            setattr(user, name, getattr(user, name) or None)
    return copy


def as_written_by_node(session: Session) -> Session:
    """``session`` as the Node Redis layout reads it back: JavaScript's fromPropertyArray
    makes an empty refresh token (and a date at the epoch, 0) undefined."""
    copy = session.copy()
    copy.refresh_token = copy.refresh_token or None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    copy.expires = None if copy.expires == epoch else copy.expires
    if copy.refresh_token_expires == epoch:
        copy.refresh_token_expires = None
    return copy


def as_written_to_dynamodb(session: Session) -> Session:
    """``session`` as the Node DynamoDB layout keeps it: ``toObject()`` leaves an empty
    scope or refresh token out of the item, so it reads back as None."""
    copy = session.copy()
    copy.scope = copy.scope or None
    copy.refresh_token = copy.refresh_token or None
    return copy


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_valid_session_round_trips(
    backend: Backend, run: Callable[..., Any], data: st.DataObject
) -> None:
    drawn = data.draw(sessions(backend))
    assert run("store_session", drawn) is True
    session = as_written(drawn) if backend.is_sql else drawn
    if backend.is_redis:
        session = as_written_by_node(drawn)
    if backend.is_dynamodb:
        session = as_written_to_dynamodb(drawn)
    loaded = run("load_session", session.id)
    assert loaded == session
    assert loaded.expires == session.expires
    assert loaded.refresh_token_expires == session.refresh_token_expires
    if session.is_online:
        assert (
            loaded.online_access_info.associated_user == session.online_access_info.associated_user
        )
    assert session in run("find_sessions_by_shop", session.shop)
    run("delete_session", session.id)
    assert run("load_session", session.id) is None


# --- any text at all: round trip, or a typed refusal that leaves nothing -----------------

#: Characters every backend finds hard, drawn often beside arbitrary ones.
HARD = ["\x00", "\udcff", "\ud800", "\udfff", "\U0010ffff", "é", "🔑", "'", '"', "\\", "%", "_"]
CHARACTERS = st.characters() | st.sampled_from(HARD)


def hostile(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """Any text: every code point (surrogates and NUL included) up to ``max_size``."""
    return st.text(CHARACTERS, min_size=min_size, max_size=max_size)


def long_text() -> st.SearchStrategy[str]:
    """Short hostile text, or one hard character repeated up to 16,000 times (in 4-byte
    UTF-8, 64,000 bytes: what MySQL's TEXT holds)."""
    repeated = st.builds(
        lambda text, count: text * count, st.sampled_from(["a", *HARD]), st.integers(1, 16_000)
    )
    return hostile(40) | repeated


def hostile_sessions(backend: Backend) -> st.SearchStrategy[Session]:
    optional_text = st.none() | hostile(40)
    users = st.builds(
        AssociatedUser,
        id=st.none() | st.integers(0, 2**63 - 1),
        first_name=optional_text,
        last_name=optional_text,
        email=optional_text,
        email_verified=st.none() | st.booleans(),
        account_owner=st.none() | st.booleans(),
        locale=optional_text,
        collaborator=st.none() | st.booleans(),
    )
    return st.builds(
        _session,
        suffix=hostile(60),
        shop=hostile(80, min_size=1 if backend.is_dynamodb else 0),
        state=long_text(),
        is_online=st.booleans(),
        scope=st.none() | long_text(),
        access_token=long_text().filter(bool),
        refresh_token=st.none() | long_text(),
        user=users,
    )


def texts_of(session: Session) -> list[str]:
    user = session.online_access_info.associated_user if session.online_access_info else None
    values = [session.id, session.shop, session.state, session.scope, session.access_token]
    values += [session.refresh_token]
    if user is not None:
        values += [user.first_name, user.last_name, user.email, user.locale]
    return [value for value in values if value]


def is_encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def must_refuse(backend: Backend, session: Session) -> bool:
    """Whether the documented rules refuse ``session`` on ``backend``."""
    texts = texts_of(session)
    if not all(is_encodable(text) for text in texts):
        return True
    if backend.server == "postgresql" and any("\x00" in text for text in texts):
        return True
    return backend.server == "mysql" and len(session.id) > 255


def as_read_back(backend: Backend, session: Session) -> Session:
    if backend.is_sql:
        return as_written(session)
    if backend.is_redis:
        return as_written_by_node(session)
    if backend.is_dynamodb:
        return as_written_to_dynamodb(session)
    return session


@pytest.fixture
def battery(
    backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Callable[..., Any], Harness, Any]]:
    """Call a storage method and wait for it (one event loop for the whole test); the
    harness and the storage, to look around it."""
    loop = asyncio.new_event_loop()
    harness = new_harness(backend, tmp_path, redis_url_of(backend, request))

    async def open_storage() -> Any:
        if not backend.is_sql:
            return harness.storage()
        storage = harness.storage(table=harness.default_table())
        await storage.create_table()
        return storage

    storage = loop.run_until_complete(open_storage())

    def run(method: str, *args: Any) -> Any:
        return loop.run_until_complete(getattr(storage, method)(*args))

    yield run, harness, storage
    loop.run_until_complete(close_harness(harness))
    loop.close()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_text_round_trips_or_is_refused_typed_leaving_nothing(
    backend: Backend, battery: tuple[Callable[..., Any], Harness, Any], data: st.DataObject
) -> None:
    run, harness, storage = battery
    drawn = data.draw(hostile_sessions(backend))
    if must_refuse(backend, drawn):
        with pytest.raises(InvalidSessionError):
            run("store_session", drawn)
    else:
        assert run("store_session", drawn) is True
        session = as_read_back(backend, drawn)
        loaded = run("load_session", session.id)
        assert loaded == session
        if session.is_online:
            assert (
                loaded.online_access_info.associated_user
                == session.online_access_info.associated_user
            )
        assert session in run("find_sessions_by_shop", session.shop)
        assert run("delete_session", session.id) is True
        assert run("load_session", session.id) is None
        assert run("find_sessions_by_shop", session.shop) == []
    assert stored_entries(harness, storage) == []

    # Lookups of any text: an answer, or the same typed refusal; nothing written.
    probe = data.draw(hostile(60))
    for method, argument, empty in (
        ("load_session", probe, None),
        ("find_sessions_by_shop", probe, []),
        ("delete_session", probe, True),
        ("delete_sessions", [probe, "x"], True),
    ):
        if not probe or not is_encodable(probe):
            if method == "find_sessions_by_shop" and probe == "" and not backend.is_dynamodb:
                # An empty shop finds nothing (DynamoDB, whose index key it cannot be, refuses it).
                assert run(method, argument) == empty
                continue
            with pytest.raises(InvalidSessionError):
                run(method, argument)
        elif backend.server == "postgresql" and "\x00" in probe:
            with pytest.raises(InvalidSessionError):
                run(method, argument)
        else:
            assert run(method, argument) == empty
    assert stored_entries(harness, storage) == []
