"""The one place that decides what a datetime means.

Rule: a naive datetime is UTC. Every datetime that enters a Session is converted
to a timezone-aware UTC datetime truncated to whole milliseconds, which is what a
JavaScript ``Date`` can hold, so both sides of a shared table see the same instant.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime with millisecond precision.

    Naive datetimes are taken to be UTC already (the convention of databases and of
    ``datetime.utcnow()``); aware ones are converted.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # already what every Session holds: the common case, made cheap
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset() != timedelta(0) or value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond - value.microsecond % 1000)
    return value


def to_epoch_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch, as JavaScript's ``Date.getTime()``."""
    return (as_utc(value) - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(milliseconds: int) -> datetime:
    """The aware UTC datetime for ``milliseconds`` since the Unix epoch."""
    return EPOCH + timedelta(milliseconds=milliseconds)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (millisecond precision)."""
    return as_utc(datetime.now(UTC))
