"""Everything the DynamoDB storages decide without I/O: the item of a session as Shopify's
Node adapter writes it, what an item read back means, and the requests each operation
sends.

The layout is ``@shopify/shopify-app-session-storage-dynamodb``'s: one table, hash key
``id`` (S), and a global secondary index on ``shop`` (S). An item is
``marshall({...session.toObject(), expires: iso, refreshTokenExpires: iso},
{removeUndefinedValues: true})``: ``id``, ``shop``, ``state``, ``isOnline``, then
``scope``, ``expires``, ``accessToken``, ``refreshToken``, ``refreshTokenExpires`` and
``onlineAccessInfo`` (a map, with ``associated_user`` a map inside it) when the session
has them, datetimes as JavaScript's ``toISOString()`` writes them.

Requests are the keyword arguments of botocore's low-level client (``put_item(**r)``),
in DynamoDB's own typed JSON (``{"S": "..."}``), so that no serializer of boto3 or of
ours stands between a session and the bytes Node writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .._encryption import TokenCipher
from .._errors import InvalidSessionError, SessionDataError
from .._session import AssociatedUser, OnlineAccessInfo, Session, restore_session
from .._storage import (
    InvalidEntryHandler,
    check_id,
    check_session,
    check_shop,
    holds_tokens,
    session_order,
)
from .._time import as_utc
from ._lease import LOCK_PREFIX, TTL_ATTRIBUTE

DEFAULT_TABLE_NAME = "shopify_sessions"
"""The default table, the Node DynamoDB adapter's default ``sessionTableName``."""

DEFAULT_SHOP_INDEX = "shop_index"
"""The default index on ``shop``, the Node adapter's default ``shopIndexName``."""

#: A typed attribute value of DynamoDB's JSON (``{"S": "x"}``), and an item of them.
Value = dict[str, Any]
Item = dict[str, Value]

#: DynamoDB's bounds: an item's size, a hash key's (and an index key's) bytes, the keys
#: of one BatchGetItem and the requests of one BatchWriteItem.
MAX_ITEM_BYTES = 400 * 1024
MAX_KEY_BYTES = 2048
BATCH_GET_KEYS = 100
BATCH_WRITE_ITEMS = 25

_TOKENS = ("accessToken", "refreshToken")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
#: JavaScript's ``toISOString()`` for the years a Python datetime holds (1 to 9999).
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
#: The associated user's fields, in the order Shopify's token response gives them.
_USER_FIELDS = (
    ("id", "N"),
    ("first_name", "S"),
    ("last_name", "S"),
    ("email", "S"),
    ("email_verified", "BOOL"),
    ("account_owner", "BOOL"),
    ("locale", "S"),
    ("collaborator", "BOOL"),
)
#: Attributes of an item that are neither the Node layout's nor unknown: ours.
_OWN_ATTRIBUTES = frozenset({TTL_ATTRIBUTE})


def check_table_name(name: object, what: str = "table_name") -> str:
    """Return ``name`` if DynamoDB accepts it as a table (or index) name."""
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"{what} must be 3 to 255 letters, digits, '_', '-' or '.', not {name!r}")
    return name


def to_iso(moment: datetime) -> str:
    """``moment`` as JavaScript's ``Date.prototype.toISOString()`` writes it."""
    m = as_utc(moment)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:"
        f"{m.second:02d}.{m.microsecond // 1000:03d}Z"
    )


def from_iso(text: str) -> datetime:
    """The instant of an ISO-8601 text (``toISOString()``'s, or with an offset), as aware
    UTC with millisecond precision; ``ValueError`` for anything else."""
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError("not an ISO-8601 date and time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = "+00:00" if zone == "Z" else zone
    moment = datetime.fromisoformat(
        f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro:06d}{offset}"
    )
    return as_utc(moment)


@dataclass(frozen=True, slots=True)
class Stored:
    """A session item as read back: the session, and the item it was read from (whose
    token attributes are what a compare-and-set compares)."""

    session: Session
    item: Item


class DynamoDBCore:
    """The items and requests of one table and its index, with an optional token cipher."""

    __slots__ = ("_cipher", "_expire_online", "index", "table")

    def __init__(
        self,
        table: str,
        index: str,
        cipher: TokenCipher | None,
        expire_online_sessions: bool,
    ) -> None:
        self.table = check_table_name(table)
        self.index = check_table_name(index, "shop_index")
        if cipher is not None and not isinstance(cipher, TokenCipher):
            raise TypeError(f"token_cipher must be a TokenCipher, not {cipher!r}")
        self._cipher = cipher
        self._expire_online = bool(expire_online_sessions)

    # --- keys and checks ----------------------------------------------------------------

    def key(self, id: object) -> Item:
        """The key of session ``id``; refuses what no session item can have."""
        id = check_id(id)
        if id.startswith(LOCK_PREFIX):
            raise InvalidSessionError(
                f"session ids starting with {LOCK_PREFIX!r} are the DynamoDB storage's locks"
            )
        if len(id.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise InvalidSessionError(
                f"a session id is longer than DynamoDB's {MAX_KEY_BYTES} bytes"
            )
        return {"id": {"S": id}}

    def shop_value(self, shop: object) -> Value:
        """``shop`` as the index's key: non-empty, within DynamoDB's bound."""
        shop = check_shop(shop)
        if not shop:
            raise InvalidSessionError("a shop must not be empty (it is the index's key)")
        if len(shop.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise InvalidSessionError(f"a shop is longer than DynamoDB's {MAX_KEY_BYTES} bytes")
        return {"S": shop}

    # --- sessions to items ----------------------------------------------------------------

    def item(self, session: Session) -> Item:
        """The item of ``session``: what the Node adapter's ``storeSession`` puts, tokens
        encrypted when the storage has a cipher."""
        session = check_session(session)
        item: Item = {**self.key(session.id), "shop": self.shop_value(session.shop)}
        item["state"] = {"S": _text("state", session.state)}
        item["isOnline"] = {"BOOL": bool(session.is_online)}
        if session.scope:
            item["scope"] = {"S": _text("scope", session.scope)}
        if session.expires is not None:
            item["expires"] = {"S": to_iso(session.expires)}
        if session.access_token:
            item["accessToken"] = {"S": self._sealed(session.access_token)}
        if session.refresh_token:
            item["refreshToken"] = {"S": self._sealed(session.refresh_token)}
        if session.refresh_token_expires is not None:
            item["refreshTokenExpires"] = {"S": to_iso(session.refresh_token_expires)}
        if session.online_access_info is not None:
            item["onlineAccessInfo"] = {"M": _access_info(session.online_access_info)}
        if self._expire_online and session.is_online and session.expires is not None:
            item[TTL_ATTRIBUTE] = {"N": str(int(session.expires.timestamp()))}
        if item_size(item) > MAX_ITEM_BYTES:
            raise InvalidSessionError(
                f"session {session.id!r} makes an item of more than DynamoDB's 400 KB"
            )
        return item

    def _sealed(self, token: str) -> str:
        text = _text("a token", token)
        return text if self._cipher is None else self._cipher.encrypt(text)

    # --- items to sessions ----------------------------------------------------------------

    def read(self, item: Mapping[str, Value], id: str | None = None) -> Stored:
        """The session ``item`` holds (the item of ``id``, when given), tokens decrypted;
        :class:`SessionDataError` if it holds no session."""
        where = f"the item {id!r}" if id is not None else "an item"
        try:
            session = _session_of(item)
        except (KeyError, TypeError, ValueError, InvalidOperation, OverflowError) as error:
            raise SessionDataError(
                f"{where} of table {self.table} holds no session: {error}"
            ) from None
        if id is not None and session.id != id:
            raise SessionDataError(f"{where} of table {self.table} holds the session of another id")
        if self._cipher is not None:
            if session.access_token:
                session.access_token = self._cipher.decrypt(session.access_token)
            if session.refresh_token:
                session.refresh_token = self._cipher.decrypt(session.refresh_token)
        return Stored(session, dict(item))

    def holds_tokens(self, stored: Stored, session: Session) -> bool:
        """Whether the stored session holds ``session``'s tokens."""
        return holds_tokens(stored.session.access_token, stored.session.refresh_token, session)

    def reencrypt_check(self) -> None:
        """Refuse to re-encrypt without a cipher."""
        if self._cipher is None:
            raise InvalidSessionError("reencrypt_tokens needs a storage with a token_cipher")

    def reencrypted(self, stored: Stored) -> Item | None:
        """The item of ``stored`` with its tokens under the current key, or None if they are."""
        self.reencrypt_check()
        assert self._cipher is not None
        tokens = [stored.item[name]["S"] for name in _TOKENS if name in stored.item]
        if all(self._cipher.is_current(token) for token in tokens if token):
            return None
        return self.item(stored.session)

    # --- requests -------------------------------------------------------------------------

    def get_request(self, id: str) -> dict[str, Any]:
        """``GetItem`` of session ``id``, read consistently: what it returns is the last
        write, which a refresh decided on it must see."""
        return {"TableName": self.table, "Key": self.key(id), "ConsistentRead": True}

    def put_request(self, item: Item) -> dict[str, Any]:
        """``PutItem`` of ``item``, unconditional, as the Node adapter's ``storeSession``."""
        return {"TableName": self.table, "Item": item}

    def replace_request(self, item: Item, stored: Item) -> dict[str, Any]:
        """``PutItem`` of ``item`` only if the table still holds the tokens of ``stored``
        (as stored: encrypted, when they are), and the item still exists: the fence."""
        conditions, values = ["attribute_exists(id)"], {}
        for name in _TOKENS:
            if name in stored:
                conditions.append(f"{name} = :{name}")
                values[f":{name}"] = stored[name]
            else:
                conditions.append(f"attribute_not_exists({name})")
        request = {**self.put_request(item), "ConditionExpression": " AND ".join(conditions)}
        if values:
            request["ExpressionAttributeValues"] = values
        return request

    def delete_request(self, id: str) -> dict[str, Any]:
        """``DeleteItem`` of session ``id``."""
        return {"TableName": self.table, "Key": self.key(id)}

    def delete_batches(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``BatchWriteItem``'s ``RequestItems`` deleting ``ids``, 25 a request."""
        keys = [self.key(id) for id in ids]
        return [
            {
                self.table: [
                    {"DeleteRequest": {"Key": key}} for key in keys[i : i + BATCH_WRITE_ITEMS]
                ]
            }
            for i in range(0, len(keys), BATCH_WRITE_ITEMS)
        ]

    def query_request(self, shop: str, start: Item | None) -> dict[str, Any]:
        """One page of the index's entries of ``shop`` (from ``start``, a page's
        ``LastEvaluatedKey``): ids only, as the Node adapter asks."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": self.index,
            "KeyConditionExpression": "shop = :shop",
            "ExpressionAttributeValues": {":shop": self.shop_value(shop)},
            "ProjectionExpression": "id",
        }
        if start:
            request["ExclusiveStartKey"] = start
        return request

    def shop_ids(self, shop: str, indexed: Iterable[Mapping[str, Value]]) -> list[str]:
        """The ids to read for ``shop``: the index's entries, and the shop's offline id.

        The index is eventually consistent: an item written a moment ago may not be in it
        yet. The offline session's id is known, so it is read in any case (consistently,
        with the others): the session an uninstall must delete is never missed.
        """
        ids = dict.fromkeys(_id_of(entry) for entry in indexed)
        offline = f"offline_{shop}"
        if len(offline.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES:
            ids.setdefault(offline)
        return [id for id in ids if id and not id.startswith(LOCK_PREFIX)]

    def get_batches(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``BatchGetItem``'s ``RequestItems`` for ``ids``, 100 a request, consistent."""
        keys = [self.key(id) for id in ids]
        return [
            {self.table: {"Keys": keys[i : i + BATCH_GET_KEYS], "ConsistentRead": True}}
            for i in range(0, len(keys), BATCH_GET_KEYS)
        ]

    def shop_sessions(self, shop: str, items: Iterable[Mapping[str, Value]]) -> list[Session]:
        """The sessions of ``shop`` among items read by id, in
        :func:`~shopify_sessions.session_order` (an item of another shop is one the index
        listed before the session moved)."""
        found = [self.read(item).session for item in items]
        return sorted((s for s in found if s.shop == shop), key=session_order)

    def scan_request(self, limit: int, start: Item | None) -> dict[str, Any]:
        """One page of a walk over the table, read consistently."""
        request: dict[str, Any] = {"TableName": self.table, "Limit": limit, "ConsistentRead": True}
        if start:
            request["ExclusiveStartKey"] = start
        return request

    def scanned(
        self, items: Iterable[Mapping[str, Value]], on_invalid: InvalidEntryHandler | None = None
    ) -> list[Stored]:
        """The sessions among scanned items: a lock is no session, and is skipped. An item
        that holds no session raises :class:`SessionDataError`, or with ``on_invalid`` is
        handed to it (by its id) and left out."""
        found = []
        for item in items:
            id = _id_of(item)
            if id.startswith(LOCK_PREFIX):
                continue
            try:
                found.append(self.read(item, id or None))
            except SessionDataError as error:
                if on_invalid is None:
                    raise
                on_invalid(id or repr(item.get("id")), error)
        return found

    def create_table_request(self) -> dict[str, Any]:
        """``CreateTable`` of the table and index the Node adapter reads, billed on demand."""
        return table_definition(self.table, self.index)

    def table_problems(self, description: Mapping[str, Any]) -> list[str]:
        """What keeps the described table (``DescribeTable``'s ``Table``) from holding
        sessions as the Node adapter does: every problem, one sentence each."""
        problems = []
        types = {
            d.get("AttributeName"): d.get("AttributeType")
            for d in description.get("AttributeDefinitions", [])
        }
        keys = [
            (k.get("AttributeName"), k.get("KeyType")) for k in description.get("KeySchema", [])
        ]
        if keys != [("id", "HASH")] or types.get("id") != "S":
            problems.append("its key must be the hash key id, of type S (string), alone")
        indexes = {i.get("IndexName"): i for i in description.get("GlobalSecondaryIndexes", [])}
        index = indexes.get(self.index)
        if index is None:
            problems.append(f"it has no global secondary index {self.index} on shop")
        else:
            index_keys = [(k.get("AttributeName"), k.get("KeyType")) for k in index["KeySchema"]]
            if index_keys != [("shop", "HASH")] or types.get("shop") != "S":
                problems.append(
                    f"its index {self.index} must have the hash key shop, of type S, alone"
                )
            if index.get("IndexStatus", "ACTIVE") not in ("ACTIVE", "UPDATING"):
                problems.append(f"its index {self.index} is {index.get('IndexStatus')}, not ACTIVE")
        return problems


def is_legacy(session: Session) -> bool:
    """Whether ``session`` is offline with a non-expiring token (no expiry, no refresh
    token): what Shopify's token exchange migrates to an expiring pair."""
    return not session.is_online and session.expires is None and not session.refresh_token


def table_definition(
    table: str = DEFAULT_TABLE_NAME, shop_index: str = DEFAULT_SHOP_INDEX
) -> dict[str, Any]:
    """The table and index the Node adapter reads, billed on demand, as ``CreateTable``'s
    input: boto3's ``client.create_table(**table_definition())``, or the JSON of the AWS
    CLI's ``aws dynamodb create-table --cli-input-json``."""
    return {
        "TableName": check_table_name(table),
        "AttributeDefinitions": [
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "shop", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": check_table_name(shop_index, "shop_index"),
                "KeySchema": [{"AttributeName": "shop", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def unprocessed_keys(answer: Mapping[str, Any], table: str) -> dict[str, Any] | None:
    """``RequestItems`` for the keys a ``BatchGetItem`` left unprocessed, or None."""
    left = answer.get("UnprocessedKeys") or {}
    return {table: left[table]} if left.get(table, {}).get("Keys") else None


def unprocessed_items(answer: Mapping[str, Any], table: str) -> dict[str, Any] | None:
    """``RequestItems`` for the writes a ``BatchWriteItem`` left unprocessed, or None."""
    left = answer.get("UnprocessedItems") or {}
    return {table: left[table]} if left.get(table) else None


def backoff(attempt: int) -> float:
    """Seconds to wait before sending unprocessed keys again (DynamoDB's advice: back off
    exponentially): 25 ms, 50 ms... up to 1.6 s."""
    return min(0.025 * (1 << min(attempt, 8)), 1.6)


#: Tries of a batch whose keys DynamoDB keeps leaving unprocessed, before giving up.
BATCH_ATTEMPTS = 8


def item_size(item: Mapping[str, Value]) -> int:
    """An item's size as DynamoDB counts it (attribute names and values, in bytes)."""
    return sum(
        len(name.encode("utf-8", "surrogatepass")) + _value_size(v) for name, v in item.items()
    )


def _value_size(value: Value) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode("utf-8", "surrogatepass"))
    if kind == "N":
        return len(str(content)) // 2 + 2
    if kind == "M":
        return 3 + sum(
            len(k.encode("utf-8", "surrogatepass")) + 1 + _value_size(v) for k, v in content.items()
        )
    return 1


def _text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidSessionError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _access_info(info: OnlineAccessInfo) -> dict[str, Value]:
    """``onlineAccessInfo`` as the Node adapter marshals Shopify's object (undefined
    fields left out)."""
    result: dict[str, Value] = {}
    if info.expires_in is not None:
        result["expires_in"] = {"N": str(_whole("expires_in", info.expires_in))}
    if info.associated_user_scope is not None:
        result["associated_user_scope"] = {
            "S": _text("associated_user_scope", info.associated_user_scope)
        }
    user = info.associated_user
    fields: dict[str, Value] = {}
    for name, kind in _USER_FIELDS:
        value = getattr(user, name)
        if value is None:
            continue
        if kind == "N":
            fields[name] = {"N": str(_whole(name, value))}
        elif kind == "BOOL":
            fields[name] = {"BOOL": bool(value)}
        else:
            fields[name] = {"S": _text(name, value)}
    result["associated_user"] = {"M": fields}
    return result


def _whole(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSessionError(f"{what} must be an int, not {type(value).__name__}")
    return value


def _id_of(item: Mapping[str, Value]) -> str:
    value = item.get("id", {}).get("S")
    return value if isinstance(value, str) else ""


# --- reading: strict about the types Node writes, as the Node adapter's Session is ------


def _session_of(item: Mapping[str, Value]) -> Session:
    fields = dict(item)
    id, shop = _string(fields.pop("id", None), "id"), _string(fields.pop("shop", None), "shop")
    if id is None or shop is None:
        raise ValueError("it has no id and shop of type S")
    state = _string(fields.pop("state", None), "state") or ""
    online = fields.pop("isOnline", None)
    if online is not None and "NULL" not in online and not isinstance(online.get("BOOL"), bool):
        raise ValueError("isOnline is not of type BOOL")
    is_online = bool(online and online.get("BOOL"))
    access = fields.pop("onlineAccessInfo", None)
    session = restore_session(
        id,
        shop,
        state,
        is_online,
        _string(fields.pop("scope", None), "scope") or None,
        _moment(fields.pop("expires", None), "expires"),
        _string(fields.pop("accessToken", None), "accessToken") or None,
        _string(fields.pop("refreshToken", None), "refreshToken") or None,
        _moment(fields.pop("refreshTokenExpires", None), "refreshTokenExpires"),
        None if access is None or "NULL" in access else _online_access_info(access),
    )
    session.extra = {
        name: _plain(value) for name, value in fields.items() if name not in _OWN_ATTRIBUTES
    }
    return session


def _string(value: Value | None, name: str) -> str | None:
    if value is None or "NULL" in value:
        return None
    if not isinstance(value.get("S"), str):
        raise ValueError(f"{name} is not of type S")
    text: str = value["S"]
    return text


def _moment(value: Value | None, name: str) -> datetime | None:
    text = _string(value, name)
    if not text:
        return None
    try:
        return from_iso(text)
    except ValueError:
        raise ValueError(f"{name} is not an ISO-8601 date") from None


def _number(value: Value | None, name: str) -> int | None:
    if value is None or "NULL" in value:
        return None
    if not isinstance(value.get("N"), str):
        raise ValueError(f"{name} is not of type N")
    number = Decimal(value["N"])
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"{name} is not a whole number")
    return int(number)


def _flag(value: Value | None, name: str) -> bool | None:
    if value is None or "NULL" in value:
        return None
    if not isinstance(value.get("BOOL"), bool):
        raise ValueError(f"{name} is not of type BOOL")
    flag: bool = value["BOOL"]
    return flag


def _online_access_info(value: Value) -> OnlineAccessInfo:
    if not isinstance(value.get("M"), dict):
        raise ValueError("onlineAccessInfo is not of type M")
    info = value["M"]
    user_value = info.get("associated_user")
    user = AssociatedUser()
    if user_value is not None and "NULL" not in user_value:
        if not isinstance(user_value.get("M"), dict):
            raise ValueError("onlineAccessInfo.associated_user is not of type M")
        fields = user_value["M"]
        for name, kind in _USER_FIELDS:
            read = {"N": _number, "S": _string, "BOOL": _flag}[kind]
            setattr(user, name, read(fields.get(name), f"associated_user.{name}"))
    return OnlineAccessInfo(
        associated_user=user,
        expires_in=_number(info.get("expires_in"), "expires_in"),
        associated_user_scope=_string(info.get("associated_user_scope"), "associated_user_scope"),
    )


def _plain(value: Value) -> object:
    """An attribute no session field reads, as :attr:`Session.extra` keeps it."""
    ((kind, content),) = value.items()
    if kind in ("S", "BOOL"):
        return content
    if kind == "N":
        number = Decimal(content)
        return int(number) if number == number.to_integral_value() else number
    if kind == "NULL":
        return None
    return value
