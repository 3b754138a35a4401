"""The Session model, a port of ``Session`` from ``@shopify/shopify-api``. No I/O."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

from ._errors import InvalidSessionError
from ._scopes import AuthScopes, ScopesLike
from ._shop import offline_session_id, online_session_id, sanitize_shop
from ._time import as_utc, from_epoch_ms, to_epoch_ms, utc_now

__all__ = ["AssociatedUser", "OnlineAccessInfo", "PropertyValue", "Session"]

PropertyValue: TypeAlias = str | int | bool
"""A value in a session's property array."""


@dataclass(slots=True, kw_only=True)
class AssociatedUser:
    """The Shopify staff member an online access token belongs to."""

    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    account_owner: bool | None = None
    locale: str | None = None
    collaborator: bool | None = None


@dataclass(slots=True, kw_only=True)
class OnlineAccessInfo:
    """What Shopify returns about the user of an online access token.

    ``expires_in`` and ``associated_user_scope`` are never part of the property
    array, so no storage keeps them and equality ignores them.
    """

    associated_user: AssociatedUser = field(default_factory=AssociatedUser)
    expires_in: int | None = None
    associated_user_scope: str | None = None


class Session:
    """An app's access to one shop: an offline session, or an online one for a user.

    Like the JavaScript class, a session accepts arbitrary extra attributes
    (``session.plan = "pro"``); they are ignored by equality and serialisation.

    Divergence from JavaScript: unknown keys read by :meth:`from_property_array`
    (extra columns such as ``createdAt``) are kept in :attr:`extra` rather than
    set as attributes, so a column can never shadow a method.

    ``expires`` and ``refresh_token_expires`` are always aware UTC datetimes with
    millisecond precision; a naive datetime assigned to them is taken to be UTC.

    Args:
        id: The session id, e.g. ``offline_<shop>`` or ``<shop>_<user id>``.
        shop: The shop domain, e.g. ``example.myshopify.com``.
        state: The OAuth state (nonce); ``""`` when there is none.
        is_online: Whether the access token is an online (per-user) one.
        scope: The granted scopes, comma-separated.
        expires: When the access token expires.
        access_token: The Admin API access token.
        refresh_token: The token that renews an expiring offline access token.
        refresh_token_expires: When the refresh token expires.
        online_access_info: The user of an online session.
    """

    def __init__(
        self,
        id: str,
        shop: str,
        state: str,
        is_online: bool,
        *,
        scope: str | None = None,
        expires: datetime | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
        refresh_token_expires: datetime | None = None,
        online_access_info: OnlineAccessInfo | None = None,
    ) -> None:
        self.id = id
        self.shop = shop
        self.state = state
        self.is_online = is_online
        self.scope = scope
        self.expires = expires
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.refresh_token_expires = refresh_token_expires
        self.online_access_info = online_access_info
        self.extra: dict[str, object] = {}
        """Keys of a property array (or columns) that are no session field."""

    @classmethod
    def offline(
        cls,
        shop: str,
        *,
        access_token: str | None = None,
        scope: str | None = None,
        expires: datetime | None = None,
        refresh_token: str | None = None,
        refresh_token_expires: datetime | None = None,
        state: str = "",
    ) -> Session:
        """The offline session of ``shop``: id ``offline_{shop}``, not online.

        ``shop`` is validated and normalised as :func:`~shopify_sessions.sanitize_shop`
        does (``admin.shopify.com/store/my-shop`` becomes ``my-shop.myshopify.com``).

        Raises:
            InvalidShopError: ``shop`` is not a valid shop domain.
        """
        domain = sanitize_shop(shop)
        return cls(
            offline_session_id(domain),
            domain,
            state,
            False,
            scope=scope,
            expires=expires,
            access_token=access_token,
            refresh_token=refresh_token,
            refresh_token_expires=refresh_token_expires,
        )

    @classmethod
    def online(
        cls,
        shop: str,
        user_id: int,
        *,
        access_token: str | None = None,
        scope: str | None = None,
        expires: datetime | None = None,
        online_access_info: OnlineAccessInfo | None = None,
        state: str = "",
    ) -> Session:
        """The online session of user ``user_id`` on ``shop``: id ``{shop}_{user_id}``.

        ``online_access_info`` defaults to one whose associated user has ``user_id`` as
        id; a given one gets ``user_id`` as its user's id if it has none. ``shop`` is
        validated and normalised as for :meth:`offline`.

        Raises:
            InvalidShopError: ``shop`` is not a valid shop domain.
            InvalidSessionError: ``user_id`` is not an int, or the associated user has
                another id.
        """
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            raise InvalidSessionError(f"user_id must be an int, not {user_id!r}")
        domain = sanitize_shop(shop)
        info = copy.deepcopy(online_access_info) if online_access_info else OnlineAccessInfo()
        if info.associated_user.id is None:
            info.associated_user.id = user_id
        elif info.associated_user.id != user_id:
            raise InvalidSessionError(
                f"the associated user's id is {info.associated_user.id}, not {user_id}"
            )
        return cls(
            online_session_id(domain, user_id),
            domain,
            state,
            True,
            scope=scope,
            expires=expires,
            access_token=access_token,
            online_access_info=info,
        )

    @property
    def expires(self) -> datetime | None:
        """When the access token expires (aware UTC), or ``None`` if it never does."""
        return self._expires

    @expires.setter
    def expires(self, value: datetime | None) -> None:
        self._expires = _optional_utc(value)

    @property
    def refresh_token_expires(self) -> datetime | None:
        """When the refresh token expires (aware UTC), or ``None``."""
        return self._refresh_token_expires

    @refresh_token_expires.setter
    def refresh_token_expires(self, value: datetime | None) -> None:
        self._refresh_token_expires = _optional_utc(value)

    def is_active(self, scopes: ScopesLike = None, within_ms: int = 500) -> bool:
        """Whether the session has an access token, unexpired, with ``scopes``.

        Args:
            scopes: The scopes the app needs; ``None`` skips the scope check.
            within_ms: Count the token as expired this many ms before it is.
        """
        return (
            not self.is_scope_changed(scopes)
            and bool(self.access_token)
            and not self.is_expired(within_ms)
        )

    def is_expired(self, within_ms: int = 0) -> bool:
        """Whether the access token expires within ``within_ms`` ms from now.

        A session without ``expires`` never expires.
        """
        if self.expires is None:
            return False
        return self.expires - timedelta(milliseconds=within_ms) < utc_now()

    def is_scope_changed(self, scopes: ScopesLike) -> bool:
        """Whether ``scopes`` asks for more than the session's scope.

        ``None`` means there is nothing to compare, so nothing changed.
        """
        if scopes is None:
            return False
        return not self.is_scope_included(scopes)

    def is_scope_included(self, scopes: ScopesLike) -> bool:
        """Whether the session's scope grants every scope in ``scopes``."""
        return AuthScopes(self.scope).has(scopes)

    def to_object(self) -> dict[str, object]:
        """The session as a dict of keyword arguments for :class:`Session`.

        ``id``, ``shop``, ``state`` and ``is_online`` are always present; the other
        fields only when truthy. Tokens are included. Extra attributes are not.
        """
        result: dict[str, object] = {
            "id": self.id,
            "shop": self.shop,
            "state": self.state,
            "is_online": self.is_online,
        }
        optional: dict[str, object] = {
            "scope": self.scope,
            "expires": self.expires,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "refresh_token_expires": self.refresh_token_expires,
            "online_access_info": copy.deepcopy(self.online_access_info),
        }
        result.update((key, value) for key, value in optional.items() if value)
        return result

    def to_property_array(self, return_user_data: bool = False) -> list[tuple[str, PropertyValue]]:
        """The session as ``(key, value)`` pairs with JavaScript key names.

        Keys come in the order of the JavaScript class's fields (as the real
        ``@shopify/shopify-api`` produces them): ``id, shop, state, isOnline, scope,
        expires, accessToken, refreshToken, refreshTokenExpires``, then the user: either
        ``onlineAccessInfo`` (the user id) or, with ``return_user_data``, ``userId,
        firstName, lastName, email, locale, emailVerified, accountOwner,
        collaborator``. Pairs whose value is ``None`` are left out. Datetimes are
        epoch milliseconds.

        Args:
            return_user_data: Give every user field instead of just the user id.
        """
        pairs: list[tuple[str, PropertyValue | None]] = [
            ("id", self.id),
            ("shop", self.shop),
            ("state", self.state),
            ("isOnline", self.is_online),
            ("scope", self.scope),
            ("expires", _optional_epoch_ms(self.expires)),
            ("accessToken", self.access_token),
            ("refreshToken", self.refresh_token),
            ("refreshTokenExpires", _optional_epoch_ms(self.refresh_token_expires)),
            *self._user_pairs(return_user_data),
        ]
        return [(key, value) for key, value in pairs if value is not None]

    def _user_pairs(self, return_user_data: bool) -> list[tuple[str, PropertyValue | None]]:
        if self.online_access_info is None:
            return []
        user = self.online_access_info.associated_user
        if not return_user_data:
            return [("onlineAccessInfo", user.id)]
        return [
            ("userId", user.id),
            ("firstName", user.first_name),
            ("lastName", user.last_name),
            ("email", user.email),
            ("locale", user.locale),
            ("emailVerified", user.email_verified),
            ("accountOwner", user.account_owner),
            ("collaborator", user.collaborator),
        ]

    @classmethod
    def from_property_array(
        cls, entries: Iterable[Sequence[object]], return_user_data: bool = False
    ) -> Session:
        """Build a session from ``(key, value)`` pairs, e.g. a database row.

        Follows JavaScript's ``Session.fromPropertyArray``: pairs with a ``None``
        value are dropped; keys are matched case-insensitively and restored to
        camelCase, other keys are lower-cased (``Shop`` -> ``shop``, ``createdAt``
        -> ``createdat``); ``isOnline`` accepts bools, numbers and ``"true"``/
        ``"false"``; dates are epoch milliseconds (int or numeric string) or
        datetimes. User keys are read only with ``return_user_data``; otherwise
        they, like any unknown key, land in :attr:`extra`. Only online sessions
        get ``online_access_info``.

        Divergences: a missing ``id`` or ``shop`` raises (JavaScript builds a
        broken session); a missing ``state`` becomes ``""`` and a missing
        ``isOnline`` becomes ``False``. Values that JavaScript would turn into
        ``NaN`` or an invalid date raise instead.

        Raises:
            InvalidSessionError: ``entries`` is not a sequence of pairs, a required
                key is missing, or a value has the wrong type.
        """
        params: dict[str, Any] = {}
        user = AssociatedUser()
        extra: dict[str, object] = {}
        for key, value in _sanitized_entries(entries).items():
            if key in _SESSION_FIELDS:
                name, convert = _SESSION_FIELDS[key]
                params[name] = convert(key, value)
            elif key == "onlineAccessInfo":
                user.id = _to_int(key, value)
            elif return_user_data and key in _USER_FIELDS:
                name, convert = _USER_FIELDS[key]
                setattr(user, name, convert(key, value))
            else:
                extra[key] = value

        for required in ("id", "shop"):
            if required not in params:
                raise InvalidSessionError(f"the property array has no {required!r}")
        params.setdefault("state", "")
        params.setdefault("is_online", False)
        if params["is_online"]:
            params["online_access_info"] = OnlineAccessInfo(associated_user=user)

        session = cls(**params)
        session.extra = extra
        return session

    def copy(self) -> Session:
        """A deep copy, sharing nothing mutable with this session."""
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        # JavaScript's equals(): the stored properties, compared to the millisecond.
        if not isinstance(other, Session):
            return NotImplemented
        if (self.id, self.shop, self.state, self.is_online) != (
            other.id,
            other.shop,
            other.state,
            other.is_online,
        ):
            return False
        return _sorted_by_key(self.to_property_array(True)) == _sorted_by_key(
            other.to_property_array(True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        expires = None if self.expires is None else self.expires.isoformat()
        return (
            f"{type(self).__name__}(id={self.id!r}, shop={self.shop!r}, "
            f"is_online={self.is_online!r}, scope={self.scope!r}, expires={expires!r}, "
            f"access_token={_redacted(self.access_token)}, "
            f"refresh_token={_redacted(self.refresh_token)})"
        )


def restore_session(
    id: str,
    shop: str,
    state: str,
    is_online: bool,
    scope: str | None,
    expires: datetime | None,
    access_token: str | None,
    refresh_token: str | None,
    refresh_token_expires: datetime | None,
    online_access_info: OnlineAccessInfo | None,
) -> Session:
    """A Session from values a storage read back: the constructor without its conversions.

    ``expires`` and ``refresh_token_expires`` must already be what the constructor
    would make of them (aware UTC, whole milliseconds, or None): the storage's codecs
    return exactly that, so converting again would only cost time on every load.
    """
    session = Session.__new__(Session)
    session.__dict__.update(
        id=id,
        shop=shop,
        state=state,
        is_online=is_online,
        scope=scope,
        _expires=expires,
        access_token=access_token,
        refresh_token=refresh_token,
        _refresh_token_expires=refresh_token_expires,
        online_access_info=online_access_info,
        extra={},
    )
    return session


def _optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _optional_epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else to_epoch_ms(value)


def _redacted(secret: str | None) -> str:
    return "None" if secret is None else "<redacted>"


def _sorted_by_key(
    pairs: list[tuple[str, PropertyValue]],
) -> list[tuple[str, PropertyValue]]:
    return sorted(pairs, key=lambda pair: pair[0])


# Keys JavaScript restores to camelCase; every other key is lower-cased.
_CAMEL_CASE_KEYS = {
    key.lower(): key
    for key in (
        "isOnline",
        "accessToken",
        "refreshToken",
        "refreshTokenExpires",
        "onlineAccessInfo",
        "userId",
        "firstName",
        "lastName",
        "accountOwner",
        "emailVerified",
    )
}


def _sanitized_entries(entries: Iterable[Sequence[object]]) -> dict[str, object]:
    # A str or a mapping is iterable but is not what JavaScript's Array.isArray accepts.
    if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Iterable):
        raise InvalidSessionError(
            "the parameter is not an array: a Session cannot be created from this object"
        )
    result: dict[str, object] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise InvalidSessionError(f"entry {index} is not a (key, value) pair")
        key, value = entry
        if not isinstance(key, str):
            raise InvalidSessionError(f"entry {index} has a key that is not a str")
        if value is not None:
            lowered = key.lower()
            result[_CAMEL_CASE_KEYS.get(lowered, lowered)] = value
    return result


def _to_required_str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidSessionError(f"{key} must be a str, got {type(value).__name__}")
    return value


def _to_str(key: str, value: object) -> str:
    # JavaScript's String(): booleans are lower case.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_optional_str(key: str, value: object) -> str | None:
    return _to_str(key, value) if value else None


def _to_bool(key: str, value: object) -> bool:
    # Same truthiness as JavaScript's Boolean() for the types a row holds.
    return bool(value)


def _to_is_online(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() == "true"
    if isinstance(value, numbers.Number):
        return bool(value)
    raise InvalidSessionError(f"{key} must be a bool, a number or a str")


def _to_int(key: str, value: object) -> int:
    """JavaScript's ``Number(value)`` for whole numbers, truncated like a ``Date``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidSessionError(f"{key} must be a number, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    try:
        # Decimal, not float: ids and epoch milliseconds must not lose digits.
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidSessionError(f"{key} is not a number") from None
    if not number.is_finite():
        raise InvalidSessionError(f"{key} is not a finite number")
    return int(number)


def _to_datetime(key: str, value: object) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return from_epoch_ms(_to_int(key, value))
    except OverflowError:
        raise InvalidSessionError(f"{key} is out of range") from None


_Converter: TypeAlias = Callable[[str, object], object]

# Property-array key -> (Session attribute, conversion).
_SESSION_FIELDS: dict[str, tuple[str, _Converter]] = {
    "id": ("id", _to_required_str),
    "shop": ("shop", _to_required_str),
    "state": ("state", _to_required_str),
    "isOnline": ("is_online", _to_is_online),
    "scope": ("scope", _to_str),
    "accessToken": ("access_token", _to_required_str),
    "expires": ("expires", _to_datetime),
    "refreshToken": ("refresh_token", _to_optional_str),
    "refreshTokenExpires": ("refresh_token_expires", _to_datetime),
}

# Property-array key -> (AssociatedUser attribute, conversion).
_USER_FIELDS: dict[str, tuple[str, _Converter]] = {
    "userId": ("id", _to_int),
    "firstName": ("first_name", _to_str),
    "lastName": ("last_name", _to_str),
    "email": ("email", _to_str),
    "locale": ("locale", _to_str),
    "emailVerified": ("email_verified", _to_bool),
    "accountOwner": ("account_owner", _to_bool),
    "collaborator": ("collaborator", _to_bool),
}
