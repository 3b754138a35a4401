"""The DynamoDB session lock: a lease item, taken, renewed and released by conditional
writes (DynamoDB's only compare-and-set). No I/O: the requests, and what their answers mean.

- **The item.** The lock of session ``<id>`` is the item ``lock:<id>`` in the sessions
  table itself: ``lockOwner`` (a random token of the holder), ``leaseExpires`` (epoch
  milliseconds) and ``ttl`` (epoch seconds, for DynamoDB's TTL when it is turned on on
  that attribute). It has no ``shop``, so the index on ``shop`` never lists it: the Node
  adapter, which reads by id and through that index, never sees a lock. Session ids that
  start with ``lock:`` are refused by the storage.
- **Taken** by ``PutItem`` if the item is absent, its lease is over, or it is already the
  taker's (a try whose answer was lost and was sent again):
  ``attribute_not_exists(id) OR leaseExpires < :now OR lockOwner = :owner``.
  ``ConditionalCheckFailedException`` means another holder has it: wait, try again.
- **Renewed** by its holder every third of the lease (the package's heartbeat):
  ``UpdateItem`` of ``leaseExpires`` if ``lockOwner = :owner``. A failed condition means
  the lease was lost (it ran out and another worker took it): the heartbeat stops.
- **Released** by its holder only: ``DeleteItem`` if ``lockOwner = :owner``. A failed
  condition means the lease ran out while it was held; the storage logs a warning, and
  ``replace_session`` (the fence) keeps the late holder from storing over a newer pair.

Leases are measured on the clocks of the hosts that take them (DynamoDB has no server
time in a condition). A host whose clock is behind by ``d`` seconds shortens the leases it
writes by ``d``: the lock keeps excluding while every two hosts' clocks differ by less
than two thirds of the lease (with the default 10 s lease, NTP-synchronised hosts and AWS
Lambda are within milliseconds). A larger skew is what the fence is there for.
"""

from __future__ import annotations

import math
import time
from typing import Any

#: The id prefix of lock items, and the TTL attribute the storage's own items carry.
LOCK_PREFIX = "lock:"
TTL_ATTRIBUTE = "ttl"

_OWNER, _EXPIRES = "lockOwner", "leaseExpires"


def lock_id(id: str) -> str:
    """The id of session ``id``'s lock item."""
    return LOCK_PREFIX + id


class Lease:
    """The requests of one holder's lease on one lock item."""

    __slots__ = ("_key", "_owner", "_seconds", "_table")

    def __init__(self, table: str, id: str, owner: str, seconds: float) -> None:
        self._table = table
        self._key = {"id": {"S": lock_id(id)}}
        self._owner = owner
        self._seconds = seconds

    def _ends(self) -> tuple[int, int]:
        """The lease's end from now, in epoch milliseconds, and in seconds for the TTL."""
        end = time.time() + self._seconds
        return math.ceil(end * 1000), math.ceil(end)

    def take_request(self) -> dict[str, Any]:
        """``PutItem`` of the lock item, if it is free, expired, or already this holder's."""
        ends, ttl = self._ends()
        return {
            "TableName": self._table,
            "Item": {
                **self._key,
                _OWNER: {"S": self._owner},
                _EXPIRES: {"N": str(ends)},
                TTL_ATTRIBUTE: {"N": str(ttl)},
            },
            "ConditionExpression": (
                "attribute_not_exists(id) OR #expires < :now OR #owner = :owner"
            ),
            "ExpressionAttributeNames": {"#expires": _EXPIRES, "#owner": _OWNER},
            "ExpressionAttributeValues": {
                ":now": {"N": str(math.floor(time.time() * 1000))},
                ":owner": {"S": self._owner},
            },
        }

    def renew_request(self) -> dict[str, Any]:
        """``UpdateItem`` moving the lease's end, if the item is still this holder's."""
        ends, ttl = self._ends()
        return {
            "TableName": self._table,
            "Key": self._key,
            "UpdateExpression": "SET #expires = :ends, #ttl = :ttl",
            "ConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {
                "#expires": _EXPIRES,
                "#ttl": TTL_ATTRIBUTE,
                "#owner": _OWNER,
            },
            "ExpressionAttributeValues": {
                ":ends": {"N": str(ends)},
                ":ttl": {"N": str(ttl)},
                ":owner": {"S": self._owner},
            },
        }

    def release_request(self) -> dict[str, Any]:
        """``DeleteItem`` of the lock item, if it is still this holder's."""
        return {
            "TableName": self._table,
            "Key": self._key,
            "ConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": _OWNER},
            "ExpressionAttributeValues": {":owner": {"S": self._owner}},
        }
