"""The behaviour battery: Shopify's `batteryOfTests` (all 8 cases) and the edges beyond it.

Runs on every backend x driver (see conftest.BACKENDS); each test has its own table.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import Harness, stored_entries
from shopify_sessions import AssociatedUser, InvalidSessionError, OnlineAccessInfo, Session

TEST_SCOPES = ["test_scope"]
UTC = timezone.utc


def in_an_hour(*, keep_ms: bool = False) -> datetime:
    moment = datetime.now(UTC) + timedelta(hours=1)
    return moment if keep_ms else moment.replace(microsecond=0)


def offline(id: str = "test_session", shop: str = "shop1.myshopify.io", **fields: Any) -> Session:
    state = fields.pop("state", "1234")
    fields.setdefault("scope", "test_scope")
    fields.setdefault("access_token", "shpat_123")
    return Session(id, shop, state, False, **fields)


def full_user(**overrides: Any) -> AssociatedUser:
    user = dict(
        id=123,
        first_name="John",
        last_name="Doe",
        email="john@doe.com",
        email_verified=True,
        account_owner=True,
        locale="en",
        collaborator=False,
    )
    user.update(overrides)
    return AssociatedUser(**user)


def online(
    id: str = "shop1.myshopify.io_123", shop: str = "shop1.myshopify.io", **fields: Any
) -> Session:
    state = fields.pop("state", "1234")
    fields.setdefault("scope", "test_scope")
    fields.setdefault("access_token", "shpat_online")
    fields.setdefault("expires", in_an_hour())
    fields.setdefault(
        "online_access_info",
        OnlineAccessInfo(
            associated_user=full_user(), expires_in=3600, associated_user_scope="test_scope"
        ),
    )
    return Session(id, shop, state, True, **fields)


# --- Shopify's batteryOfTests ------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: offline(),
        lambda: offline(expires=in_an_hour()),
        lambda: offline(expires=None),
    ],
    ids=["no-expires", "expires-in-an-hour", "expires-none"],
)
async def test_1_store_and_delete_all_kinds_of_sessions(storage: Any, make: Any) -> None:
    session = make()
    assert await storage.store_session(session) is True
    loaded = await storage.load_session(session.id)
    assert loaded == session
    assert loaded.is_active(TEST_SCOPES)
    assert await storage.delete_session(session.id) is True
    assert await storage.load_session(session.id) is None
    assert await storage.delete_session(session.id) is True


async def test_2_store_sessions_with_unexpected_fields(storage: Any) -> None:
    session = offline()
    session.some_field = "lol"  # type: ignore[attr-defined]
    assert await storage.store_session(session) is True
    assert await storage.load_session(session.id) == session


async def test_3_store_and_delete_sessions_with_user_info(storage: Any) -> None:
    session = online()
    assert await storage.store_session(session) is True
    loaded = await storage.load_session(session.id)
    assert loaded == session
    assert loaded.online_access_info.associated_user == full_user()
    assert loaded.is_active(TEST_SCOPES)
    assert await storage.delete_session(session.id) is True
    assert await storage.load_session(session.id) is None
    assert await storage.delete_session(session.id) is True


async def test_4_wrong_ids_return_none(storage: Any) -> None:
    assert await storage.load_session("not_a_session_id") is None


async def test_5_find_all_sessions_of_a_shop(storage: Any) -> None:
    sessions = [
        offline("find_1", "find-shop1.myshopify.io"),
        offline("find_2", "find-shop1.myshopify.io"),
        offline("find_3", "find-shop2.myshopify.io"),
        offline("find_4", "find-shop3.myshopify.io"),
    ]
    for session in sessions:
        await storage.store_session(session)
    found = await storage.find_sessions_by_shop("find-shop1.myshopify.io")
    assert sorted(s.id for s in found) == ["find_1", "find_2"]
    assert all(s in sessions[:2] for s in found)
    assert await storage.find_sessions_by_shop("nowhere.myshopify.io") == []


async def test_6_delete_sessions_by_ids(storage: Any) -> None:
    for id in ("del_1", "del_2", "keep"):
        await storage.store_session(offline(id, "delete-shop.myshopify.io"))
    found = await storage.find_sessions_by_shop("delete-shop.myshopify.io")
    assert await storage.delete_sessions([s.id for s in found if s.id != "keep"]) is True
    assert [s.id for s in await storage.find_sessions_by_shop("delete-shop.myshopify.io")] == [
        "keep"
    ]


async def test_7_scope_longer_than_255_characters(storage: Any) -> None:
    scope = ",".join(f"write_scope_{i:03d}" for i in range(20))[:280]
    assert len(scope) == 280
    session = offline(scope=scope)
    await storage.store_session(session)
    assert await storage.load_session(session.id) == session


async def test_8_store_and_delete_sessions_with_refresh_tokens(storage: Any) -> None:
    session = offline(expires=in_an_hour(), refresh_token="shprt_refresh")
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    assert loaded == session
    assert loaded.refresh_token == "shprt_refresh"
    assert loaded.refresh_token_expires is None

    in_30_days = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    session.refresh_token_expires = in_30_days
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    assert loaded.refresh_token_expires == in_30_days
    assert loaded == session

    await storage.delete_session(session.id)
    assert await storage.load_session(session.id) is None


# --- Beyond the battery ------------------------------------------------------------------


async def test_store_replaces_every_field_so_cleared_fields_are_cleared(storage: Any) -> None:
    full = online(refresh_token="shprt_1", refresh_token_expires=in_an_hour())
    await storage.store_session(full)

    cleared = Session(full.id, full.shop, "", False)
    await storage.store_session(cleared)
    loaded = await storage.load_session(full.id)
    assert loaded == cleared
    assert loaded.access_token is None
    assert loaded.scope is None
    assert loaded.expires is None
    assert loaded.refresh_token is None
    assert loaded.refresh_token_expires is None
    assert loaded.online_access_info is None


async def test_invalidated_access_token_is_removed(storage: Any) -> None:
    session = offline()
    await storage.store_session(session)
    session.access_token = None  # what invalidateAccessToken does in Shopify's Node packages
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    assert loaded.access_token is None
    assert not loaded.is_active(TEST_SCOPES)


async def test_online_session_with_partial_user_info(storage: Any) -> None:
    user = AssociatedUser(id=42, email="only@email.com", account_owner=False)
    session = online(online_access_info=OnlineAccessInfo(associated_user=user))
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    assert loaded == session
    assert loaded.online_access_info.associated_user == user


async def test_user_info_false_values_round_trip(storage: Any) -> None:
    user = full_user(email_verified=False, account_owner=False, collaborator=False)
    session = online(online_access_info=OnlineAccessInfo(associated_user=user))
    await storage.store_session(session)
    assert (await storage.load_session(session.id)).online_access_info.associated_user == user


async def test_milliseconds_are_kept(storage: Any) -> None:
    expires = datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    refresh_expires = datetime(2031, 6, 1, 0, 0, 0, 999000, tzinfo=UTC)
    session = offline(expires=expires, refresh_token="r", refresh_token_expires=refresh_expires)
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    assert loaded.expires == expires
    assert loaded.refresh_token_expires == refresh_expires
    assert loaded.expires.tzinfo is not None


async def test_datetimes_in_other_zones_and_naive_are_utc(storage: Any) -> None:
    tokyo = timezone(timedelta(hours=9))
    session = offline(
        expires=datetime(2031, 1, 1, 9, 0, tzinfo=tokyo),
        refresh_token="r",
        refresh_token_expires=datetime(2031, 1, 1, 0, 0),
    )
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    assert loaded.expires == datetime(2031, 1, 1, 0, 0, tzinfo=UTC)
    assert loaded.expires.utcoffset() == timedelta(0)
    assert loaded.refresh_token_expires == datetime(2031, 1, 1, 0, 0, tzinfo=UTC)


async def test_largest_user_id_round_trips(storage: Any) -> None:
    user = AssociatedUser(id=2**63 - 1)
    session = online(online_access_info=OnlineAccessInfo(associated_user=user))
    await storage.store_session(session)
    assert (
        await storage.load_session(session.id)
    ).online_access_info.associated_user.id == 2**63 - 1


async def test_unicode_everywhere(storage: Any) -> None:
    user = full_user(
        first_name="Zoë 山田", last_name="Ñandú 🦩", email="ü@exämple.com", locale="ja-JP"
    )
    session = online(
        id="shop-ü.myshopify.io_123",
        state="état-𝔘",  # noqa: RUF001
        scope="read_products,write_ördërs",
        access_token="tök€n-🔑",
        online_access_info=OnlineAccessInfo(associated_user=user),
    )
    await storage.store_session(session)
    assert await storage.load_session(session.id) == session
    assert await storage.find_sessions_by_shop(session.shop) == [session]


async def test_ids_and_shops_that_look_like_sql_are_literal(storage: Any) -> None:
    session = offline("x'; DROP TABLE session; --", "o'brien\"s%_.myshopify.io")
    await storage.store_session(session)
    await storage.store_session(offline("plain", "obrien.myshopify.io"))
    assert await storage.load_session(session.id) == session
    assert await storage.find_sessions_by_shop(session.shop) == [session]
    assert await storage.load_session("x") is None


async def test_store_twice_keeps_one_row_with_the_latest_values(storage: Any) -> None:
    session = offline()
    await storage.store_session(session)
    session.scope = "write_products"
    session.access_token = "shpat_new"
    await storage.store_session(session)
    found = await storage.find_sessions_by_shop(session.shop)
    assert found == [session]


async def test_find_order_is_documented_and_the_same_everywhere(storage: Any) -> None:
    shop = "order.myshopify.io"
    base = datetime(2030, 1, 1, tzinfo=UTC)
    sessions = [
        offline("b_never", shop),
        offline("a_never", shop),
        offline("early", shop, expires=base),
        offline("late", shop, expires=base + timedelta(days=1)),
        offline("tie_b", shop, expires=base + timedelta(hours=1)),
        offline("tie_a", shop, expires=base + timedelta(hours=1)),
    ]
    for session in sessions:
        await storage.store_session(session)
    found = await storage.find_sessions_by_shop(shop)
    assert [s.id for s in found] == ["a_never", "b_never", "late", "tie_a", "tie_b", "early"]


async def test_find_has_no_silent_cap(storage: Any) -> None:
    shop = "many.myshopify.io"
    for i in range(60):
        await storage.store_session(offline(f"many_{i:02d}", shop))
    assert len(await storage.find_sessions_by_shop(shop)) == 60


async def test_delete_sessions_of_nothing_is_a_no_op(storage: Any) -> None:
    await storage.store_session(offline())
    assert await storage.delete_sessions([]) is True
    assert await storage.load_session("test_session") is not None


async def test_delete_sessions_with_absent_and_repeated_ids(storage: Any) -> None:
    await storage.store_session(offline("one"))
    assert await storage.delete_sessions(["one", "one", "absent"]) is True
    assert await storage.load_session("one") is None


async def test_delete_100_000_ids_in_one_call(storage: Any) -> None:
    # Far past SQLite's and asyncpg's 32,767 bound parameters: this fails unless the ids
    # are chunked.
    kept = offline("kept_session", "big.myshopify.io")
    await storage.store_session(kept)
    stored = [f"big_{i}" for i in range(0, 100_000, 9_999)]
    for id in stored:
        await storage.store_session(offline(id, "big.myshopify.io"))
    ids = [f"big_{i}" for i in range(100_000)]
    assert await storage.delete_sessions(ids) is True
    assert await storage.find_sessions_by_shop("big.myshopify.io") == [kept]


async def test_loaded_sessions_are_independent_copies(storage: Any) -> None:
    session = online()
    await storage.store_session(session)
    session.online_access_info.associated_user.first_name = "Changed"
    loaded = await storage.load_session(session.id)
    assert loaded.online_access_info.associated_user.first_name == "John"
    loaded.scope = "changed"
    assert (await storage.load_session(session.id)).scope == "test_scope"


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        ("store_session", "not a session"),
        ("store_session", None),
        ("load_session", ""),
        ("load_session", 42),
        ("delete_session", None),
        ("delete_sessions", "abc"),
        ("delete_sessions", ["ok", ""]),
        ("find_sessions_by_shop", None),
        # Text UTF-8 cannot encode (a lone surrogate, as surrogateescape makes of bytes).
        ("load_session", "bad\udcff"),
        ("delete_session", "bad\udcff"),
        ("delete_sessions", ["ok", "bad\udcff"]),
        ("find_sessions_by_shop", "bad\udcff.myshopify.io"),
    ],
)
async def test_invalid_input_is_refused(storage: Any, call: str, argument: Any) -> None:
    with pytest.raises(InvalidSessionError):
        await getattr(storage, call)(argument)


async def test_session_with_empty_id_is_refused(storage: Any) -> None:
    with pytest.raises(InvalidSessionError, match="empty"):
        await storage.store_session(offline(""))


async def test_delete_expired_sessions_keeps_what_a_refresh_token_can_renew(storage: Any) -> None:
    now = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
    hour, day = timedelta(hours=1), timedelta(days=1)
    shop = "purge.myshopify.io"
    kinds = {
        "never_expires": offline("never_expires", shop),
        "valid": offline("valid", shop, expires=now + hour),
        "expired": offline("expired", shop, expires=now - day),
        "expired_in_grace": offline("expired_in_grace", shop, expires=now - hour),
        "renewable": offline(
            "renewable", shop, expires=now - day, refresh_token="r", refresh_token_expires=now + day
        ),
        "renewable_forever": offline(
            "renewable_forever", shop, expires=now - day, refresh_token="r"
        ),
        "refresh_expired": offline(
            "refresh_expired",
            shop,
            expires=now - day,
            refresh_token="r",
            refresh_token_expires=now - hour,
        ),
        "online_expired": online("online_expired", shop, expires=now - day),
    }
    for index in range(7):
        kinds[f"old_{index}"] = offline(f"old_{index}", shop, expires=now - day * (index + 2))
    for session in kinds.values():
        await storage.store_session(session)

    deleted = await storage.delete_expired_sessions(grace=2 * hour, now=now)
    kept = {s.id for s in await storage.find_sessions_by_shop(shop)}
    assert kept == {"never_expires", "valid", "expired_in_grace", "renewable", "renewable_forever"}
    assert deleted == len(kinds) - len(kept)
    assert await storage.delete_expired_sessions(now=now) == 1  # expired_in_grace, no grace now
    assert await storage.delete_expired_sessions(now=now) == 0


async def test_delete_expired_sessions_in_small_batches(storage: Any) -> None:
    now = datetime(2031, 6, 1, tzinfo=UTC)
    for index in range(23):
        expires = now - timedelta(minutes=1) if index % 3 else now + timedelta(minutes=1)
        await storage.store_session(
            offline(f"batch_{index:02d}", "batches.myshopify.io", expires=expires)
        )
    assert await storage.delete_expired_sessions(now=now, batch_size=4) == 15
    assert len(await storage.find_sessions_by_shop("batches.myshopify.io")) == 8


async def test_ids_and_shops_match_exactly(storage: Any) -> None:
    # MySQL's default collation would make "ABC" find "abc" and "é" find "e".
    for id, shop in (
        ("abc", "Shop.myshopify.io"),
        ("ABC", "shop.myshopify.io"),
        ("é", "e.myshopify.io"),
    ):
        await storage.store_session(offline(id, shop))
    assert (await storage.load_session("ABC")).shop == "shop.myshopify.io"
    assert (await storage.load_session("abc")).shop == "Shop.myshopify.io"
    assert await storage.load_session("e") is None
    assert [s.id for s in await storage.find_sessions_by_shop("shop.myshopify.io")] == ["ABC"]
    assert await storage.find_sessions_by_shop("E.myshopify.io") == []


async def test_ten_thousand_character_scope_and_tokens(storage: Any) -> None:
    session = offline(
        scope=",".join(["write_products"] * 666)[:10_000],
        access_token="🔑" * 10_000,
        refresh_token="r" * 10_000,
    )
    await storage.store_session(session)
    loaded = await storage.load_session(session.id)
    assert loaded == session
    assert len(loaded.access_token) == 10_000


# --- replace_session: the compare-and-set that fences a renewed pair --------------------


async def test_replace_session_stores_over_the_pair_it_renews(storage: Any) -> None:
    old = offline(refresh_token="shprt_old", expires=in_an_hour())
    await storage.store_session(old)
    new = offline(
        access_token="shpat_new", refresh_token="shprt_new", expires=in_an_hour() + timedelta(1)
    )
    assert await storage.replace_session(new, previous=old) is True
    assert await storage.load_session(old.id) == new
    # Told again (a retried write whose answer was lost): already stored, still True.
    assert await storage.replace_session(new, previous=old) is True
    assert await storage.load_session(old.id) == new


async def test_replace_session_never_stores_over_another_pair(storage: Any) -> None:
    old = offline(refresh_token="shprt_old")
    newer = offline(access_token="shpat_newer", refresh_token="shprt_newer")
    late = offline(access_token="shpat_late", refresh_token="shprt_late", scope="late")
    await storage.store_session(newer)
    assert await storage.replace_session(late, previous=old) is False
    assert await storage.load_session(old.id) == newer


async def test_replace_session_never_brings_a_deleted_session_back(storage: Any) -> None:
    old = offline(refresh_token="shprt_old")
    await storage.store_session(old)
    await storage.delete_session(old.id)
    renewed = offline(access_token="shpat_new", refresh_token="shprt_new")
    assert await storage.replace_session(renewed, previous=old) is False
    assert await storage.load_session(old.id) is None


async def test_replace_session_with_the_same_tokens_writes_the_other_fields(storage: Any) -> None:
    # What a scopes update does: same pair, new scope. A legacy token has no refresh token.
    old = offline(refresh_token=None)
    await storage.store_session(old)
    rescoped = offline(refresh_token=None, scope="read_orders,write_products")
    assert await storage.replace_session(rescoped, previous=old) is True
    assert (await storage.load_session(old.id)).scope == "read_orders,write_products"


async def test_replace_session_refuses_bad_input(storage: Any) -> None:
    with pytest.raises(InvalidSessionError, match="same id"):
        await storage.replace_session(offline("a"), previous=offline("b"))
    with pytest.raises(InvalidSessionError):
        await storage.replace_session(offline(), previous="offline_x")  # type: ignore[arg-type]


# --- hostile text: refused, typed, before anything is written ----------------------------

#: Text no backend can store: a lone surrogate, what ``surrogateescape`` makes of a byte
#: that is not UTF-8.
UNENCODABLE = "bad\udcff"
TEXT_FIELDS = ["id", "shop", "state", "scope", "access_token", "refresh_token"]
USER_FIELDS = ["first_name", "last_name", "email", "locale"]


@pytest.mark.parametrize("field", TEXT_FIELDS + USER_FIELDS)
async def test_unencodable_text_is_refused_before_anything_is_written(
    harness: Harness, storage: Any, field: str
) -> None:
    session = online(id="hostile_1", shop="hostile.myshopify.io", refresh_token="shprt_1")
    target = session.online_access_info.associated_user if field in USER_FIELDS else session
    setattr(target, field, UNENCODABLE)
    with pytest.raises(InvalidSessionError, match="lone surrogate") as refused:
        await storage.store_session(session)
    assert "bad" not in str(refused.value)  # the text itself (a token, maybe) is not shown
    assert stored_entries(harness, storage) == []
    assert await storage.find_sessions_by_shop("hostile.myshopify.io") == []
    assert await storage.load_session("hostile_1") is None


async def test_unencodable_text_never_replaces_a_session(harness: Harness, storage: Any) -> None:
    old = offline(refresh_token="shprt_old")
    await storage.store_session(old)
    for field in TEXT_FIELDS[1:]:
        renewed = offline(refresh_token="shprt_new")
        setattr(renewed, field, UNENCODABLE)
        with pytest.raises(InvalidSessionError, match="lone surrogate"):
            await storage.replace_session(renewed, previous=old)
    assert await storage.load_session(old.id) == old
    assert [s.id for s in await storage.find_sessions_by_shop(old.shop)] == [old.id]
    assert len(stored_entries(harness, storage)) == (2 if harness.backend.is_redis else 1)
