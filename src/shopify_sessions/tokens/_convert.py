"""``shopifyapp``'s token dataclasses to and from :class:`~shopify_sessions.Session`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from shopify_app import ClientCredentialsAccessToken, TokenExchangeAccessToken, User

from .._errors import InvalidSessionError
from .._session import AssociatedUser, OnlineAccessInfo, Session
from .._shop import _MYSHOPIFY, offline_session_id, online_session_id, sanitize_shop, shop_domain
from .._time import UTC, as_utc


def shop_name(domain: str) -> str:
    """The bare ``my-shop`` of ``my-shop.myshopify.com``, as ``shopifyapp`` takes it."""
    domain = sanitize_shop(domain).rstrip("/")
    if not domain.endswith(_MYSHOPIFY):
        raise InvalidSessionError(
            f"{domain!r} is not a myshopify.com domain, which shopifyapp needs"
        )
    return domain[: -len(_MYSHOPIFY)]


def session_from_token(token: TokenExchangeAccessToken | ClientCredentialsAccessToken) -> Session:
    """The session of a ``shopifyapp`` access token, ready to store.

    The bare shop (``"my-shop"``) becomes its ``my-shop.myshopify.com`` domain; the id
    follows Shopify's JS convention (``offline_{shop}``, or ``{shop}_{user id}`` for an
    online token); ISO timestamps become aware UTC datetimes; the ``User`` of an online
    token becomes the ``AssociatedUser``, and its ``scope`` the ``associated_user_scope``.
    ``state`` is ``""`` and ``online_access_info.expires_in`` is ``None``: a token has
    neither.

    Raises:
        InvalidSessionError: not a token, or one with an invalid shop, timestamp or user.
    """
    if not isinstance(token, (TokenExchangeAccessToken, ClientCredentialsAccessToken)):
        raise InvalidSessionError(
            f"expected a TokenExchangeAccessToken or ClientCredentialsAccessToken, "
            f"got {type(token).__name__}"
        )
    domain = shop_domain(token.shop)
    is_online = token.access_mode == "online"
    user: User | None = token.user
    info = None
    if is_online:
        if user is None:
            raise InvalidSessionError("an online token must carry its user")
        id = online_session_id(domain, user.id)
        info = OnlineAccessInfo(
            associated_user=AssociatedUser(
                id=user.id,
                first_name=user.first_name,
                last_name=user.last_name,
                email=user.email,
                email_verified=user.email_verified,
                account_owner=user.account_owner,
                locale=user.locale,
                collaborator=user.collaborator,
            ),
            associated_user_scope=user.scope,
        )
    else:
        id = offline_session_id(domain)
    return Session(
        id,
        domain,
        "",
        is_online,
        scope=token.scope,
        expires=parse_timestamp(token.expires),
        access_token=token.token,
        refresh_token=getattr(token, "refresh_token", None),
        refresh_token_expires=parse_timestamp(getattr(token, "refresh_token_expires", None)),
        online_access_info=info,
    )


def token_from_session(session: Session) -> TokenExchangeAccessToken:
    """The ``shopifyapp`` token of a session, as ``refresh_access_token`` takes it.

    The reverse of :func:`session_from_token`: ``session_from_token(token_from_session(s))``
    equals ``s`` for any session with ``state == ""``, and every field of a token comes
    back unchanged the other way. Timestamps keep their milliseconds when they have any
    (``shopifyapp`` writes whole seconds). User fields the session lacks stay ``None``.

    Raises:
        InvalidSessionError: not a session, or not of a ``myshopify.com`` shop.
    """
    if not isinstance(session, Session):
        raise InvalidSessionError(f"expected a Session, got {type(session).__name__}")
    user = None
    info = session.online_access_info
    if session.is_online and info is not None:
        associated = info.associated_user
        # shopifyapp's User is typed for what Shopify sends; a stored session may lack
        # fields, and they are carried as None so that nothing is made up.
        user = User(
            **cast(
                "dict[str, Any]",
                {
                    "id": associated.id,
                    "first_name": associated.first_name,
                    "last_name": associated.last_name,
                    "scope": info.associated_user_scope,
                    "email": associated.email,
                    "account_owner": associated.account_owner,
                    "locale": associated.locale,
                    "collaborator": associated.collaborator,
                    "email_verified": associated.email_verified,
                },
            )
        )
    access_mode: Literal["online", "offline"] = "online" if session.is_online else "offline"
    return TokenExchangeAccessToken(
        shop=shop_name(session.shop),
        token=cast(str, session.access_token),
        expires=format_timestamp(session.expires),
        scope=cast(str, session.scope),
        access_mode=access_mode,
        refresh_token=session.refresh_token,
        refresh_token_expires=format_timestamp(session.refresh_token_expires),
        user=user,
    )


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp (``shopifyapp`` writes ``2026-01-01T00:00:00Z``) as aware UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise InvalidSessionError(f"not an ISO 8601 timestamp: {value!r}") from None
    return as_utc(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC))


def format_timestamp(value: datetime | None) -> str | None:
    """``value`` as ``shopifyapp`` writes timestamps; milliseconds only when it has some."""
    if value is None:
        return None
    value = as_utc(value).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"
