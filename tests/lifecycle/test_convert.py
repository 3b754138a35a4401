"""shopifyapp's token dataclasses to and from Session: exact both ways, every field."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone

import pytest
from shopify_app import ClientCredentialsAccessToken, TokenExchangeAccessToken, User

from shopify_sessions import (
    AssociatedUser,
    InvalidSessionError,
    InvalidShopError,
    OnlineAccessInfo,
    Session,
)
from shopify_sessions.tokens import session_from_token, token_from_session

USER = User(
    id=902541635,
    first_name="John",
    last_name="Smith",
    scope="read_products",
    email="john@example.com",
    account_owner=True,
    locale="en",
    collaborator=False,
    email_verified=True,
)
OFFLINE = TokenExchangeAccessToken(
    shop="my-shop",
    token="shpat_offline",
    expires="2026-11-25T15:00:00Z",
    scope="read_products,write_orders",
    access_mode="offline",
    refresh_token="shprt_refresh",
    refresh_token_expires="2027-02-23T14:00:00Z",
    user=None,
)
ONLINE = TokenExchangeAccessToken(
    shop="my-shop",
    token="shpua_online",
    expires="2026-11-26T14:00:00Z",
    scope="read_products",
    access_mode="online",
    refresh_token=None,
    refresh_token_expires=None,
    user=USER,
)
LEGACY = TokenExchangeAccessToken(
    shop="my-shop",
    token="shpat_legacy",
    expires=None,
    scope="read_products",
    access_mode="offline",
    refresh_token=None,
    refresh_token_expires=None,
    user=None,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_offline_token_to_session() -> None:
    session = session_from_token(OFFLINE)
    assert session.id == "offline_my-shop.myshopify.com"
    assert session.shop == "my-shop.myshopify.com"
    assert (session.state, session.is_online) == ("", False)
    assert session.scope == "read_products,write_orders"
    assert session.expires == utc(2026, 11, 25, 15)
    assert session.access_token == "shpat_offline"
    assert session.refresh_token == "shprt_refresh"
    assert session.refresh_token_expires == utc(2027, 2, 23, 14)
    assert session.online_access_info is None


def test_online_token_to_session() -> None:
    session = session_from_token(ONLINE)
    assert session.id == "my-shop.myshopify.com_902541635"
    assert session.is_online
    assert session.refresh_token is None and session.refresh_token_expires is None
    assert session.online_access_info == OnlineAccessInfo(
        associated_user=AssociatedUser(
            id=902541635,
            first_name="John",
            last_name="Smith",
            email="john@example.com",
            email_verified=True,
            account_owner=True,
            locale="en",
            collaborator=False,
        ),
        associated_user_scope="read_products",
    )


def test_legacy_token_never_expires() -> None:
    session = session_from_token(LEGACY)
    assert session.expires is None and session.refresh_token is None


def test_client_credentials_token_to_session() -> None:
    token = ClientCredentialsAccessToken(
        shop="my-shop",
        token="shpat_cc",
        expires="2026-11-26T14:00:00Z",
        scope="read_products",
        access_mode="offline",
        user=None,
    )
    session = session_from_token(token)
    assert session.id == "offline_my-shop.myshopify.com"
    assert session.access_token == "shpat_cc"
    assert session.expires == utc(2026, 11, 26, 14)
    assert session.refresh_token is None


@pytest.mark.parametrize("token", [OFFLINE, ONLINE, LEGACY], ids=["offline", "online", "legacy"])
def test_token_round_trip_is_exact_on_every_field(token: TokenExchangeAccessToken) -> None:
    back = token_from_session(session_from_token(token))
    for field in fields(TokenExchangeAccessToken):
        assert getattr(back, field.name) == getattr(token, field.name), field.name
    assert back == token


SESSIONS = [
    Session(
        "offline_my-shop.myshopify.com",
        "my-shop.myshopify.com",
        "",
        False,
        scope="read_products",
        expires=utc(2026, 11, 25, 15, 0, 0, 123000),
        access_token="shpat_x",
        refresh_token="shprt_x",
        refresh_token_expires=utc(2027, 2, 23, 14),
    ),
    Session(
        "my-shop.myshopify.com_7",
        "my-shop.myshopify.com",
        "",
        True,
        scope="read_products",
        expires=utc(2026, 11, 26),
        access_token="shpua_x",
        online_access_info=OnlineAccessInfo(
            associated_user=AssociatedUser(id=7, first_name="Ann", email="ann@example.com"),
            associated_user_scope="read_products",
        ),
    ),
    Session("offline_my-shop.myshopify.com", "my-shop.myshopify.com", "", False, access_token="t"),
]


@pytest.mark.parametrize("session", SESSIONS, ids=["offline-ms", "online-partial-user", "bare"])
def test_session_round_trip_is_exact(session: Session) -> None:
    back = session_from_token(token_from_session(session))
    assert back == session
    assert back.to_object() == session.to_object()  # every field, not only the saved ones
    if session.online_access_info is not None:
        assert back.online_access_info == session.online_access_info


def test_timestamps_are_written_as_shopifyapp_writes_them() -> None:
    token = token_from_session(SESSIONS[0])
    assert token.expires == "2026-11-25T15:00:00.123Z"
    assert token.refresh_token_expires == "2027-02-23T14:00:00Z"
    assert token.shop == "my-shop" and token.access_mode == "offline"


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidSessionError):
        session_from_token({"shop": "my-shop"})  # type: ignore[arg-type]
    with pytest.raises(InvalidShopError):
        session_from_token(TokenExchangeAccessToken(**{**OFFLINE.__dict__, "shop": "bad shop"}))
    with pytest.raises(InvalidSessionError, match="ISO 8601"):
        session_from_token(TokenExchangeAccessToken(**{**OFFLINE.__dict__, "expires": "soon"}))
    with pytest.raises(InvalidSessionError, match="user"):
        session_from_token(TokenExchangeAccessToken(**{**ONLINE.__dict__, "user": None}))
    with pytest.raises(InvalidSessionError, match=r"myshopify\.com"):
        token_from_session(Session("offline_a.shop.dev", "a.shop.dev", "", False))
    with pytest.raises(InvalidSessionError):
        token_from_session("offline_my-shop")  # type: ignore[arg-type]
