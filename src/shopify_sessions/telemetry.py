"""OpenTelemetry for the token lifecycle and the webhooks.

With ``pip install 'shopify-sessions[opentelemetry]'``, every ``OfflineTokens``,
``apply_webhook`` and framework integration of this package reports to OpenTelemetry's
global providers: counters of refreshes and exchanges by outcome, histograms of their
durations and of session lock waits, spans around each renewal. Pass a :class:`Telemetry`
of your own (``telemetry=``) to report elsewhere. Without the extra nothing changes: the
logs are the report, and OpenTelemetry is never imported.
"""

from ._telemetry import Telemetry

__all__ = ["Telemetry"]

Telemetry.__module__ = __name__
