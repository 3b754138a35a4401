"""OpenTelemetry for the token lifecycle and the webhooks.

With ``pip install 'shopify-sessions[opentelemetry]'``, every ``OfflineTokens``,
``apply_webhook`` and framework integration of this package reports to OpenTelemetry's
global providers: counters of refreshes and exchanges by outcome, histograms of their
durations and of session lock waits, spans around each renewal. Pass a :class:`Telemetry`
of your own (``telemetry=``) to report elsewhere. Without the extra nothing changes: the
logs are the report, and OpenTelemetry is never imported.

The public API is :class:`Telemetry` (``__all__``). The names below it (every metric,
attribute and span, as the Telemetry page lists them) and the recorder's methods serve the
package's own reporting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._errors import (
    LockTimeoutError,
    SessionStorageError,
    ShopTokenError,
    StorageConflictError,
    StorageUnavailableError,
)

__all__ = ["Telemetry"]

#: The instrumentation scope: the meter's and the tracer's name.
SCOPE = "shopify_sessions"

# Metrics.
REFRESHES = "shopify_sessions.token.refreshes"
LEGACY_EXCHANGES = "shopify_sessions.token.legacy_exchanges"
TOKEN_EXCHANGES = "shopify_sessions.token.exchanges"
RENEWAL_DURATION = "shopify_sessions.token.renewal.duration"
LOCK_WAIT = "shopify_sessions.lock.wait.duration"
WEBHOOKS = "shopify_sessions.webhooks"

# Attributes. The shop and the session id go on spans only: a metric attribute with one
# value per shop would make one time series per shop.
OPERATION = "shopify_sessions.operation"
TRIGGER = "shopify_sessions.trigger"
OUTCOME = "shopify_sessions.outcome"
ERROR_CODE = "shopify_sessions.error.code"
LOCK_ACQUIRED = "shopify_sessions.lock.acquired"
TOPIC = "shopify_sessions.webhook.topic"
EFFECT = "shopify_sessions.webhook.effect"
SHOP = "shopify_sessions.shop"
SESSION_ID = "shopify_sessions.session.id"
LOCK_WAITED = "shopify_sessions.lock.wait"
ERROR_TYPE = "error.type"

# Spans.
RENEWAL_SPANS = {
    "refresh": "shopify_sessions.token.refresh",
    "legacy_exchange": "shopify_sessions.token.legacy_exchange",
    "token_exchange": "shopify_sessions.token.exchange",
}
WEBHOOK_SPAN = "shopify_sessions.webhook"

# Values of OUTCOME.
DONE = "done"
DONE_ELSEWHERE = "done_by_another_worker"
REAUTHORIZATION_REQUIRED = "reauthorization_required"
FAILED = "failed"
DISCARDED = "discarded"

_COUNTERS = {
    "refresh": (REFRESHES, "{refresh}", "Offline token refreshes, by outcome."),
    "legacy_exchange": (
        LEGACY_EXCHANGES,
        "{exchange}",
        "Exchanges of a non-expiring offline token for an expiring pair, by outcome.",
    ),
    "token_exchange": (
        TOKEN_EXCHANGES,
        "{exchange}",
        "Exchanges of a request's session token for an offline pair or online token, by outcome.",
    ),
}
#: Seconds, as OpenTelemetry's semantic conventions advise for request durations.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0)


class Telemetry:
    """Where the token lifecycle and the webhooks report, through OpenTelemetry's API.

    Every ``OfflineTokens``, ``apply_webhook`` and framework integration of this package
    reports to OpenTelemetry's global meter and tracer providers when ``opentelemetry-api``
    is installed (``pip install 'shopify-sessions[opentelemetry]'``); they do nothing until
    the application configures an SDK. Pass a ``Telemetry`` of your own (their
    ``telemetry=`` argument) to report to other providers, as tests do with the SDK's
    in-memory reader and exporter. The names of every metric, attribute and span are on
    the Telemetry page of the documentation.

    Args:
        meter_provider: the ``MeterProvider`` to report metrics to; the global one by
            default.
        tracer_provider: the ``TracerProvider`` to report spans to; the global one by
            default.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed.
    """

    __slots__ = ("_counters", "_durations", "_lock_waits", "_status", "_tracer", "_webhooks")

    def __init__(self, *, meter_provider: Any = None, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as error:
            raise ImportError(
                "shopify_sessions.telemetry needs OpenTelemetry's API: "
                "pip install 'shopify-sessions[opentelemetry]'"
            ) from error
        from . import __version__

        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        self._status = (trace.Status, trace.StatusCode.ERROR)
        self._counters = {
            operation: meter.create_counter(name, unit=unit, description=description)
            for operation, (name, unit, description) in _COUNTERS.items()
        }
        self._durations = meter.create_histogram(
            RENEWAL_DURATION,
            unit="s",
            description="Seconds from asking for a renewal to its outcome, lock wait included.",
            explicit_bucket_boundaries_advisory=_BUCKETS,
        )
        self._lock_waits = meter.create_histogram(
            LOCK_WAIT,
            unit="s",
            description="Seconds waited for a session lock, taken or timed out.",
            explicit_bucket_boundaries_advisory=_BUCKETS,
        )
        self._webhooks = meter.create_counter(
            WEBHOOKS, unit="{webhook}", description="Webhooks applied to the sessions, by effect."
        )

    def __repr__(self) -> str:
        return f"Telemetry(scope={SCOPE!r})"

    @contextmanager
    def _span(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
        """A span made current for the block; exceptions are left to the caller to report."""
        with self._tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            yield span

    def _fail_span(self, span: Any, error: BaseException | None, code: str) -> None:
        """Mark ``span`` as failed with ``code``: no message, no traceback (a driver error's
        text could hold a statement's parameters)."""
        status, error_code = self._status
        span.set_status(status(error_code, code))
        if error is not None:
            span.set_attribute(ERROR_TYPE, type(error).__qualname__)

    def _count_renewal(
        self, operation: str, duration: float, attributes: Mapping[str, Any]
    ) -> None:
        """One renewal of ``operation`` ended after ``duration`` seconds."""
        self._counters[operation].add(1, attributes)
        self._durations.record(duration, attributes)

    def _record_lock_wait(self, operation: str, seconds: float, *, acquired: bool) -> None:
        """A session lock was waited for ``seconds``, and taken or not."""
        self._lock_waits.record(seconds, {OPERATION: operation, LOCK_ACQUIRED: acquired})

    def _count_webhook(self, topic: str, effect: str) -> None:
        """A webhook of ``topic`` had ``effect`` on the sessions."""
        self._webhooks.add(1, {TOPIC: topic, EFFECT: effect})


class _NoTelemetry(Telemetry):
    """The recorder without OpenTelemetry: every call does nothing."""

    __slots__ = ()

    def __init__(self) -> None:
        pass

    def __repr__(self) -> str:
        return "Telemetry(off: opentelemetry-api is not installed)"

    @contextmanager
    def _span(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
        yield None

    def _fail_span(self, span: Any, error: BaseException | None, code: str) -> None:
        pass

    def _count_renewal(
        self, operation: str, duration: float, attributes: Mapping[str, Any]
    ) -> None:
        pass

    def _record_lock_wait(self, operation: str, seconds: float, *, acquired: bool) -> None:
        pass

    def _count_webhook(self, topic: str, effect: str) -> None:
        pass


_default: Telemetry | None = None


def default_telemetry() -> Telemetry:
    """The global providers' recorder when ``opentelemetry-api`` is installed, else one that
    does nothing (made once per process)."""
    global _default
    if _default is None:
        try:
            _default = Telemetry()
        except ImportError:
            _default = _NoTelemetry()
    return _default


def check_telemetry(telemetry: object) -> Telemetry:
    """``telemetry``, or the default when it is ``None``; a TypeError for anything else."""
    if telemetry is None:
        return default_telemetry()
    if not isinstance(telemetry, Telemetry):
        raise TypeError(f"telemetry must be a Telemetry, not {telemetry!r}")
    return telemetry


def error_code(error: BaseException) -> str:
    """The ``shopify_sessions.error.code`` of an error that ended an operation."""
    if isinstance(error, ShopTokenError):
        return error.code
    if isinstance(error, LockTimeoutError):
        return "lock_timeout"
    if isinstance(error, StorageUnavailableError):
        return "storage_unavailable"
    if isinstance(error, StorageConflictError):
        return "storage_conflict"
    if isinstance(error, SessionStorageError):
        return "storage_error"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "unexpected_error"
