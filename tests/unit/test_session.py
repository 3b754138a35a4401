from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shopify_sessions import InvalidShopError, offline_session_id, online_session_id
from shopify_sessions._errors import InvalidSessionError
from shopify_sessions._scopes import AuthScopes
from shopify_sessions._session import AssociatedUser, OnlineAccessInfo, Session
from shopify_sessions._time import UTC, utc_now

ACCESS_TOKEN = "shpat_secret_access_token"
REFRESH_TOKEN = "shprt_secret_refresh_token"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
EXPIRES_MS = 1893553445678
REFRESH_EXPIRES = datetime(2031, 1, 1, tzinfo=UTC)
REFRESH_EXPIRES_MS = 1924992000000


def online_session() -> Session:
    return Session(
        "shop.myshopify.com_42",
        "shop.myshopify.com",
        "state-nonce",
        True,
        scope="write_products,read_orders",
        expires=EXPIRES,
        access_token=ACCESS_TOKEN,
        online_access_info=OnlineAccessInfo(
            associated_user=AssociatedUser(
                id=42,
                first_name="Ada",
                last_name="Lovelace",
                email="ada@example.com",
                email_verified=True,
                account_owner=False,
                locale="en",
                collaborator=False,
            ),
            expires_in=86399,
            associated_user_scope="write_products",
        ),
    )


def offline_session() -> Session:
    return Session(
        "offline_shop.myshopify.com",
        "shop.myshopify.com",
        "",
        False,
        scope="read_products",
        access_token=ACCESS_TOKEN,
        expires=EXPIRES,
        refresh_token=REFRESH_TOKEN,
        refresh_token_expires=REFRESH_EXPIRES,
    )


ONLINE_WITH_USER_DATA = [
    ("id", "shop.myshopify.com_42"),
    ("shop", "shop.myshopify.com"),
    ("state", "state-nonce"),
    ("isOnline", True),
    ("scope", "write_products,read_orders"),
    ("expires", EXPIRES_MS),
    ("accessToken", ACCESS_TOKEN),
    ("userId", 42),
    ("firstName", "Ada"),
    ("lastName", "Lovelace"),
    ("email", "ada@example.com"),
    ("locale", "en"),
    ("emailVerified", True),
    ("accountOwner", False),
    ("collaborator", False),
]

OFFLINE = [
    ("id", "offline_shop.myshopify.com"),
    ("shop", "shop.myshopify.com"),
    ("state", ""),
    ("isOnline", False),
    ("scope", "read_products"),
    ("expires", EXPIRES_MS),
    ("accessToken", ACCESS_TOKEN),
    ("refreshToken", REFRESH_TOKEN),
    ("refreshTokenExpires", REFRESH_EXPIRES_MS),
]


# --- construction and datetimes ------------------------------------------------


def test_defaults() -> None:
    session = Session("id", "shop.myshopify.com", "", False)
    assert session.scope is None
    assert session.expires is None
    assert session.access_token is None
    assert session.refresh_token is None
    assert session.refresh_token_expires is None
    assert session.online_access_info is None
    assert session.extra == {}


def test_naive_datetime_is_utc_and_truncated_to_ms() -> None:
    session = Session(
        "id", "s.myshopify.com", "", False, expires=datetime(2030, 1, 1, 0, 0, 0, 999)
    )
    assert session.expires == datetime(2030, 1, 1, tzinfo=UTC)
    assert session.expires is not None and session.expires.tzinfo is UTC


def test_aware_datetime_is_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    session = Session("id", "s.myshopify.com", "", False)
    session.refresh_token_expires = datetime(2030, 1, 1, 2, 0, 0, 1500, tzinfo=plus_two)
    assert session.refresh_token_expires == datetime(2030, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
    assert session.refresh_token_expires.tzinfo is UTC


def test_datetime_setters_accept_none_and_reject_other_types() -> None:
    session = offline_session()
    session.expires = None
    assert session.expires is None
    with pytest.raises(TypeError):
        session.expires = "2030-01-01"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        session.refresh_token_expires = 1893553445678  # type: ignore[assignment]


def test_arbitrary_attributes_are_allowed() -> None:
    session = offline_session()
    session.some_field = "lol"  # type: ignore[attr-defined]
    assert session.some_field == "lol"  # type: ignore[attr-defined]


# --- expiry and scopes ------------------------------------------------------------


def test_is_expired() -> None:
    now = utc_now()
    assert not Session("id", "s.myshopify.com", "", False).is_expired()
    assert not Session("id", "s.myshopify.com", "", False).is_expired(10**9)
    future = Session("id", "s.myshopify.com", "", False, expires=now + timedelta(seconds=60))
    assert not future.is_expired()
    assert future.is_expired(within_ms=61_000)
    assert not future.is_expired(within_ms=50_000)
    past = Session("id", "s.myshopify.com", "", False, expires=now - timedelta(seconds=1))
    assert past.is_expired()


def test_is_active() -> None:
    session = offline_session()
    session.expires = utc_now() + timedelta(minutes=5)
    assert session.is_active("read_products")
    assert session.is_active(None)
    assert session.is_active()
    assert not session.is_active("write_products")
    assert not session.is_active("read_products", within_ms=10 * 60 * 1000)
    session.access_token = ""
    assert not session.is_active("read_products")


def test_is_active_default_window_is_500_ms() -> None:
    session = offline_session()
    session.expires = utc_now() + timedelta(milliseconds=300)
    assert not session.is_active(None)
    session.expires = utc_now() + timedelta(seconds=10)
    assert session.is_active(None)


def test_is_active_without_expiry() -> None:
    session = Session("id", "s.myshopify.com", "", False, access_token="t", scope="read_a")
    assert session.is_active("read_a")


def test_is_scope_changed_and_included() -> None:
    session = online_session()
    assert not session.is_scope_changed(None)
    assert not session.is_scope_changed("read_products")
    assert not session.is_scope_changed(["write_products", "read_orders"])
    assert not session.is_scope_changed(AuthScopes("read_products"))
    assert session.is_scope_changed("write_orders")
    assert session.is_scope_included("read_products, read_orders")
    assert not session.is_scope_included("read_themes")


def test_session_without_scope_includes_only_nothing() -> None:
    session = Session("id", "s.myshopify.com", "", False)
    assert session.is_scope_included("")
    assert not session.is_scope_included("read_products")


# --- to_object ------------------------------------------------------------------


def test_to_object_of_a_bare_session() -> None:
    session = Session("id", "s.myshopify.com", "", False, scope="", access_token="")
    assert session.to_object() == {
        "id": "id",
        "shop": "s.myshopify.com",
        "state": "",
        "is_online": False,
    }


def test_to_object_includes_truthy_fields_and_tokens() -> None:
    session = offline_session()
    session.extra["createdat"] = 1
    assert session.to_object() == {
        "id": "offline_shop.myshopify.com",
        "shop": "shop.myshopify.com",
        "state": "",
        "is_online": False,
        "scope": "read_products",
        "expires": EXPIRES,
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "refresh_token_expires": REFRESH_EXPIRES,
    }


def test_to_object_round_trips_through_the_constructor() -> None:
    session = online_session()
    rebuilt = Session(**session.to_object())  # type: ignore[arg-type]
    assert rebuilt == session
    assert rebuilt.online_access_info == session.online_access_info
    assert rebuilt.online_access_info is not session.online_access_info


# --- to_property_array ----------------------------------------------------------


def test_to_property_array_online_with_user_data() -> None:
    assert online_session().to_property_array(return_user_data=True) == ONLINE_WITH_USER_DATA


def test_to_property_array_online_without_user_data() -> None:
    assert online_session().to_property_array() == [
        *ONLINE_WITH_USER_DATA[:7],
        ("onlineAccessInfo", 42),
    ]


def test_to_property_array_offline() -> None:
    assert offline_session().to_property_array() == OFFLINE
    assert offline_session().to_property_array(return_user_data=True) == OFFLINE


def test_to_property_array_drops_none_but_keeps_falsy_values() -> None:
    session = Session("id", "s.myshopify.com", "", True, scope="", access_token="")
    session.online_access_info = OnlineAccessInfo(associated_user=AssociatedUser(id=7))
    assert session.to_property_array(True) == [
        ("id", "id"),
        ("shop", "s.myshopify.com"),
        ("state", ""),
        ("isOnline", True),
        ("scope", ""),
        ("accessToken", ""),
        ("userId", 7),
    ]
    session.online_access_info = OnlineAccessInfo()
    assert session.to_property_array()[-1] == ("accessToken", "")


def test_to_property_array_ignores_extra_attributes() -> None:
    session = offline_session()
    session.extra["createdat"] = 5
    session.userId = 9  # type: ignore[attr-defined]
    assert session.to_property_array(True) == OFFLINE


# --- from_property_array --------------------------------------------------------


def test_round_trip_with_user_data() -> None:
    for session in (online_session(), offline_session()):
        rebuilt = Session.from_property_array(session.to_property_array(True), True)
        assert rebuilt == session
        assert rebuilt.to_property_array(True) == session.to_property_array(True)


def test_round_trip_without_user_data_keeps_only_the_user_id() -> None:
    rebuilt = Session.from_property_array(online_session().to_property_array())
    assert rebuilt.online_access_info == OnlineAccessInfo(associated_user=AssociatedUser(id=42))
    assert rebuilt.extra == {}


def test_keys_are_sanitised_like_javascript() -> None:
    session = Session.from_property_array(
        [
            ("ID", "offline_s.myshopify.com"),
            ("Shop", "s.myshopify.com"),
            ("STATE", "st"),
            ("ISONLINE", "false"),
            ("Scope", "read_a"),
            ("ACCESSTOKEN", "tok"),
            ("Expires", 1000),
            ("refreshtoken", "rt"),
            ("RefreshTokenExpires", "2000"),
            ("createdAt", "yesterday"),
        ]
    )
    assert session.id == "offline_s.myshopify.com"
    assert session.shop == "s.myshopify.com"
    assert session.state == "st"
    assert session.is_online is False
    assert session.scope == "read_a"
    assert session.access_token == "tok"
    assert session.expires == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert session.refresh_token == "rt"
    assert session.refresh_token_expires == datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert session.extra == {"createdat": "yesterday"}
    assert session.online_access_info is None


def test_user_keys_without_user_data_fall_through_to_extra() -> None:
    session = Session.from_property_array(
        [
            ("id", "x"),
            ("shop", "s.myshopify.com"),
            ("state", ""),
            ("isOnline", True),
            ("USERID", 5),
            ("firstname", "Ada"),
            ("EMAIL", "a@b.c"),
            ("emailverified", True),
        ]
    )
    assert session.extra == {
        "userId": 5,
        "firstName": "Ada",
        "email": "a@b.c",
        "emailVerified": True,
    }
    assert session.online_access_info == OnlineAccessInfo()
    assert not hasattr(session, "userId")


def test_user_keys_with_user_data_are_coerced() -> None:
    session = Session.from_property_array(
        [
            ("id", "x"),
            ("shop", "s.myshopify.com"),
            ("state", ""),
            ("isOnline", 1),
            ("userId", "42"),
            ("firstName", 12),
            ("lastName", True),
            ("email", "a@b.c"),
            ("locale", "fr"),
            ("emailVerified", 1),
            ("accountOwner", "false"),  # Boolean("false") is true in JavaScript too
            ("collaborator", 0),
        ],
        return_user_data=True,
    )
    assert session.online_access_info == OnlineAccessInfo(
        associated_user=AssociatedUser(
            id=42,
            first_name="12",
            last_name="true",
            email="a@b.c",
            locale="fr",
            email_verified=True,
            account_owner=True,
            collaborator=False,
        )
    )
    assert session.extra == {}


def test_online_access_info_key_sets_the_user_id() -> None:
    pairs = [("id", "x"), ("shop", "s.myshopify.com"), ("state", ""), ("isOnline", "TRUE")]
    session = Session.from_property_array([*pairs, ("onlineAccessInfo", "7")])
    assert session.online_access_info == OnlineAccessInfo(associated_user=AssociatedUser(id=7))


def test_offline_sessions_never_get_online_access_info() -> None:
    pairs = [("id", "x"), ("shop", "s.myshopify.com"), ("state", ""), ("isOnline", 0)]
    session = Session.from_property_array([*pairs, ("userId", 7)], return_user_data=True)
    assert session.is_online is False
    assert session.online_access_info is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("True", True),
        ("false", False),
        ("1", False),
        (1, True),
        (0, False),
        (Decimal(1), True),
    ],
)
def test_is_online_coercion(value: object, expected: bool) -> None:
    session = Session.from_property_array(
        [("id", "x"), ("shop", "s.myshopify.com"), ("state", ""), ("isOnline", value)]
    )
    assert session.is_online is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, None),
        ("", None),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        (EXPIRES_MS, EXPIRES),
        (str(EXPIRES_MS), EXPIRES),
        (f" {EXPIRES_MS} ", EXPIRES),
        (float(EXPIRES_MS), EXPIRES),
        (Decimal(EXPIRES_MS), EXPIRES),
        (datetime(2030, 1, 2, 3, 4, 5, 678999), EXPIRES),
    ],
)
def test_date_coercion(value: object, expected: datetime | None) -> None:
    session = Session.from_property_array(
        [("id", "x"), ("shop", "s.myshopify.com"), ("expires", value)]
    )
    assert session.expires == expected


@pytest.mark.parametrize("value", ["2030-01-01T00:00:00Z", "abc", "NaN", True, [1], 10**20])
def test_bad_date_raises(value: object) -> None:
    with pytest.raises(InvalidSessionError):
        Session.from_property_array([("id", "x"), ("shop", "s.myshopify.com"), ("expires", value)])


def test_scope_and_refresh_token_are_stringified() -> None:
    session = Session.from_property_array(
        [("id", "x"), ("shop", "s.myshopify.com"), ("scope", 5), ("refreshToken", 7)]
    )
    assert session.scope == "5"
    assert session.refresh_token == "7"
    empty = Session.from_property_array(
        [("id", "x"), ("shop", "s.myshopify.com"), ("refreshToken", "")]
    )
    assert empty.refresh_token is None


def test_none_values_are_dropped_but_the_string_null_is_kept() -> None:
    session = Session.from_property_array(
        [
            ("id", "x"),
            ("shop", "s.myshopify.com"),
            ("state", None),
            ("scope", None),
            ("accessToken", "null"),
            ("expires", None),
            ("other", None),
        ]
    )
    assert session.state == ""
    assert session.scope is None
    assert session.access_token == "null"
    assert session.expires is None
    assert session.extra == {}


def test_defaults_for_missing_state_and_is_online() -> None:
    session = Session.from_property_array([["id", "x"], ["shop", "s.myshopify.com"]])
    assert session.state == ""
    assert session.is_online is False


@pytest.mark.parametrize("missing", ["id", "shop"])
def test_missing_id_or_shop_raises(missing: str) -> None:
    pairs = [(key, value) for key, value in OFFLINE if key != missing]
    with pytest.raises(InvalidSessionError, match=missing):
        Session.from_property_array(pairs)


@pytest.mark.parametrize(
    "entries",
    [
        "id,x",
        {"id": "x", "shop": "s.myshopify.com"},
        42,
        None,
        [("id",)],
        [("id", "x", "y")],
        ["ab"],
        [(1, "x")],
        [("id", 1), ("shop", "s.myshopify.com")],
        [("id", "x"), ("shop", "s.myshopify.com"), ("isOnline", object())],
        [("id", "x"), ("shop", "s.myshopify.com"), ("onlineAccessInfo", "abc")],
    ],
)
def test_malformed_input_raises(entries: object) -> None:
    with pytest.raises(InvalidSessionError):
        Session.from_property_array(entries)  # type: ignore[arg-type]


def test_later_duplicate_keys_win() -> None:
    session = Session.from_property_array(
        [("id", "x"), ("shop", "a.myshopify.com"), ("SHOP", "b.myshopify.com")]
    )
    assert session.shop == "b.myshopify.com"


def test_accepts_any_iterable_of_pairs() -> None:
    session = Session.from_property_array(iter(OFFLINE))
    assert session == offline_session()


# --- equality ------------------------------------------------------------------------


def test_equal_sessions() -> None:
    assert online_session() == online_session()
    assert offline_session() == offline_session()
    assert online_session() != offline_session()


def test_equality_is_to_the_millisecond() -> None:
    a, b = offline_session(), offline_session()
    b.expires = EXPIRES + timedelta(microseconds=999)
    assert a == b
    b.expires = EXPIRES + timedelta(milliseconds=1)
    assert a != b


def test_equality_ignores_unsaved_fields_and_extras() -> None:
    a, b = online_session(), online_session()
    assert b.online_access_info is not None
    b.online_access_info.expires_in = 1
    b.online_access_info.associated_user_scope = "read_orders"
    b.extra["createdat"] = 123
    b.some_field = "lol"  # type: ignore[attr-defined]
    assert a == b


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("id", "other"),
        ("shop", "other.myshopify.com"),
        ("state", "other"),
        ("is_online", False),
        ("scope", "read_orders"),
        ("access_token", "other"),
        ("refresh_token", "other"),
        ("expires", None),
    ],
)
def test_any_saved_field_difference_breaks_equality(attribute: str, value: object) -> None:
    other = online_session()
    setattr(other, attribute, value)
    assert online_session() != other


def test_user_field_difference_breaks_equality() -> None:
    other = online_session()
    assert other.online_access_info is not None
    other.online_access_info.associated_user.email = "other@example.com"
    assert online_session() != other


def test_comparison_with_other_types_and_hashing() -> None:
    session = offline_session()
    assert session != "offline_shop.myshopify.com"
    assert session != None  # noqa: E711
    with pytest.raises(TypeError):
        hash(session)


# --- copy and repr --------------------------------------------------------------


def test_copy_is_deep() -> None:
    session = online_session()
    session.extra["tags"] = ["a"]
    duplicate = session.copy()
    assert duplicate == session
    assert duplicate is not session
    assert duplicate.online_access_info is not None
    duplicate.online_access_info.associated_user.email = "changed@example.com"
    duplicate.extra["tags"].append("b")  # type: ignore[attr-defined]
    assert session.online_access_info is not None
    assert session.online_access_info.associated_user.email == "ada@example.com"
    assert session.extra == {"tags": ["a"]}


def test_repr_and_str_never_show_tokens() -> None:
    session = offline_session()
    for text in (repr(session), str(session), f"{session}", repr([session])):
        assert ACCESS_TOKEN not in text
        assert REFRESH_TOKEN not in text
        assert "offline_shop.myshopify.com" in text
    assert "access_token=<redacted>" in repr(session)
    assert "refresh_token=None" in repr(online_session())


# --- Session.offline and Session.online: the ids made for you ---------------------------


def test_offline_makes_the_id_and_keeps_the_js_constructor_equal() -> None:
    expires = datetime(2030, 1, 1, tzinfo=timezone.utc)
    made = Session.offline(
        "admin.shopify.com/store/my-shop",
        access_token="shpat_x",
        scope="read_products",
        expires=expires,
        refresh_token="shprt_x",
        refresh_token_expires=expires,
    )
    shop = "my-shop.myshopify.com"
    assert made == Session(
        offline_session_id(shop),
        shop,
        "",
        False,
        access_token="shpat_x",
        scope="read_products",
        expires=expires,
        refresh_token="shprt_x",
        refresh_token_expires=expires,
    )
    assert (made.id, made.shop, made.is_online) == (f"offline_{shop}", shop, False)
    with pytest.raises(InvalidShopError):
        Session.offline("https://my-shop.myshopify.com")


def test_online_makes_the_id_and_gives_the_user_its_id() -> None:
    shop = "my-shop.myshopify.com"
    made = Session.online(shop, 42, access_token="shpua_x")
    assert (made.id, made.is_online) == (online_session_id(shop, 42), True)
    assert made.online_access_info is not None
    assert made.online_access_info.associated_user.id == 42
    info = OnlineAccessInfo(associated_user=AssociatedUser(email="ada@example.com"))
    with_user = Session.online(shop, 42, online_access_info=info)
    assert with_user.online_access_info is not None
    assert with_user.online_access_info.associated_user.email == "ada@example.com"
    assert info.associated_user.id is None  # the caller's object is left as it was
    assert Session.from_property_array(with_user.to_property_array(True), True) == with_user
    with pytest.raises(InvalidSessionError, match="43"):
        Session.online(
            shop, 42, online_access_info=OnlineAccessInfo(associated_user=AssociatedUser(id=43))
        )
    with pytest.raises(InvalidSessionError, match="user_id"):
        Session.online(shop, "42")  # type: ignore[arg-type]
