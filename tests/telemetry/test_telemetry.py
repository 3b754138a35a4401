"""What the token lifecycle and the webhooks report to OpenTelemetry, read back with the
SDK's in-memory metric reader and span exporter: every outcome, its code, the durations
and lock waits, spans with the shop and never a token; and nothing at all without
OpenTelemetry installed."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from conftest import BACKENDS, Awaited
from races import locked
from shopify_requests import (
    StandIn,
    fail,
    scopes_update,
    seeded,
    session_token,
    uninstalled,
    verifying_app,
    wait_for_token_request,
)
from shopify_sessions import (
    LockTimeoutError,
    ReauthorizationRequiredError,
    Session,
    TokenRefreshError,
    offline_session_id,
)
from shopify_sessions import telemetry as names
from shopify_sessions.telemetry import Telemetry
from shopify_sessions.webhooks import apply_webhook, apply_webhook_async

ROOT = Path(__file__).resolve().parents[2]
MEMORY = [backend for backend in BACKENDS if backend.server == "memory"]

#: Telemetry is written against the storage protocols: the memory storages, sync and
#: asyncio, stand for every backend.
on_memory = pytest.mark.parametrize("backend", MEMORY, indirect=True, ids=lambda b: b.name)


class Recorded:
    """A Telemetry on providers of its own, and what they received."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.telemetry = Telemetry(
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            tracer_provider=tracer_provider,
        )

    def points(self, name: str) -> list[tuple[dict[str, Any], float]]:
        """``(attributes, value)`` of each data point of a metric (a histogram's count)."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                assert scope.scope.name == "shopify_sessions"
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "count", None)
                            value = point.value if value is None else value  # type: ignore[union-attr]
                            found.append((dict(point.attributes or {}), value))
        return found

    def count(self, name: str, **attributes: Any) -> float:
        """The sum over the data points whose attributes include ``attributes``."""
        wanted = {_attribute(key): value for key, value in attributes.items()}
        return sum(
            value
            for point, value in self.points(name)
            if all(point.get(k) == v for k, v in wanted.items())
        )

    def spans(self, name: str) -> list[Any]:
        return [span for span in self.exporter.get_finished_spans() if span.name == name]

    def text(self) -> str:
        """Everything reported, as text: to look for tokens in."""
        spans = [
            (
                s.name,
                dict(s.attributes or {}),
                s.status.description,
                [e.attributes for e in s.events],
            )
            for s in self.exporter.get_finished_spans()
        ]
        return repr(self.reader.get_metrics_data()) + repr(spans)


def _attribute(key: str) -> str:
    """``error_code`` for ``shopify_sessions.error.code``, and so on."""
    return {
        "operation": names.OPERATION,
        "trigger": names.TRIGGER,
        "outcome": names.OUTCOME,
        "error_code": names.ERROR_CODE,
        "acquired": names.LOCK_ACQUIRED,
        "topic": names.TOPIC,
        "effect": names.EFFECT,
    }[key]


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def tokens(tokens_for: Any, recorded: Recorded) -> Any:
    return tokens_for(telemetry=recorded.telemetry)


def tokens_of(*sessions: Session | None) -> list[str]:
    return [t for s in sessions if s for t in (s.access_token, s.refresh_token) if t]


@on_memory
async def test_a_refresh_is_counted_timed_and_traced_with_the_shop_and_no_token(
    tokens: Any, storage: Any, standin: StandIn, shop: str, recorded: Recorded
) -> None:
    old = seeded(standin, shop, access_expires_in=-10)
    await storage.store_session(old)
    renewed = await tokens.get(shop)

    done = {"operation": "refresh", "trigger": "get", "outcome": "done"}
    assert recorded.count(names.REFRESHES, **done) == 1
    assert recorded.points(names.REFRESHES) == [
        ({names.OPERATION: "refresh", names.TRIGGER: "get", names.OUTCOME: "done"}, 1)
    ]
    assert recorded.count(names.RENEWAL_DURATION, **done) == 1
    assert recorded.count(names.LOCK_WAIT, operation="refresh", acquired=True) == 1
    assert recorded.count(names.LEGACY_EXCHANGES) == recorded.count(names.TOKEN_EXCHANGES) == 0

    [span] = recorded.spans("shopify_sessions.token.refresh")
    assert span.attributes[names.SHOP] == shop
    assert span.attributes[names.SESSION_ID] == offline_session_id(shop)
    assert span.attributes[names.OUTCOME] == "done"
    assert span.attributes[names.LOCK_WAITED] >= 0
    assert span.status.status_code == StatusCode.UNSET
    reported = recorded.text()
    assert shop in reported and "shopify_sessions.token.renewal.duration" in reported
    for token in tokens_of(old, renewed):
        assert token not in reported
    assert shop not in repr(recorded.reader.get_metrics_data())  # shops on spans only


@on_memory
async def test_a_worker_that_waited_counts_done_by_another_worker(
    tokens: Any, tokens_for: Any, storage: Any, standin: StandIn, shop: str, recorded: Recorded
) -> None:
    standin.reset(latency=1.0)
    await storage.store_session(seeded(standin, shop, access_expires_in=-10))
    second = tokens_for(telemetry=recorded.telemetry)
    first_get = asyncio.ensure_future(_get(tokens, shop))
    await asyncio.to_thread(wait_for_token_request, standin, shop)
    second_get = asyncio.ensure_future(_get(second, shop))
    assert (await first_get) == (await second_get)

    assert recorded.count(names.REFRESHES, outcome="done") == 1
    assert recorded.count(names.REFRESHES, outcome="done_by_another_worker") == 1
    assert recorded.count(names.LOCK_WAIT, operation="refresh", acquired=True) == 2
    spans = recorded.spans("shopify_sessions.token.refresh")
    assert sorted(s.attributes[names.OUTCOME] for s in spans) == ["done", "done_by_another_worker"]


@on_memory
async def test_reauthorization_required_and_failures_carry_their_code(
    tokens: Any, tokens_for: Any, storage: Any, standin: StandIn, shop: str, recorded: Recorded
) -> None:
    session = seeded(standin, shop, access_expires_in=-10)
    await storage.store_session(session)
    fail(standin, shop, "invalid_grant")
    with pytest.raises(ReauthorizationRequiredError):
        await tokens.get(shop)
    fail(standin, shop, 503, 503, 503)
    with pytest.raises(TokenRefreshError):
        await tokens.get(shop)
    async with locked(storage, session.id):
        with pytest.raises(LockTimeoutError):
            await tokens_for(telemetry=recorded.telemetry, lock_timeout=0.2).get(shop)

    reauthorize = {"outcome": "reauthorization_required", "error_code": "invalid_grant"}
    assert recorded.count(names.REFRESHES, **reauthorize) == 1
    assert recorded.count(names.REFRESHES, outcome="failed", error_code="server_error") == 1
    assert recorded.count(names.REFRESHES, outcome="failed", error_code="lock_timeout") == 1
    assert recorded.count(names.LOCK_WAIT, operation="refresh", acquired=False) == 1
    assert recorded.count(names.LOCK_WAIT, operation="refresh", acquired=True) == 2
    assert recorded.count(names.RENEWAL_DURATION) == 3
    spans = recorded.spans("shopify_sessions.token.refresh")
    assert [(s.status.status_code, s.status.description) for s in spans] == [
        (StatusCode.ERROR, "invalid_grant"),
        (StatusCode.ERROR, "server_error"),
        (StatusCode.ERROR, "lock_timeout"),
    ]
    assert [s.attributes[names.ERROR_TYPE] for s in spans] == [
        "ReauthorizationRequiredError",
        "TokenRefreshError",
        "LockTimeoutError",
    ]
    assert not any(s.events for s in spans)  # no exception text: it could hold parameters
    for token in tokens_of(session):
        assert token not in recorded.text()


@on_memory
async def test_a_pair_discarded_after_an_uninstall_is_counted_with_the_webhook(
    tokens: Any, storage: Any, standin: StandIn, shop: str, recorded: Recorded
) -> None:
    standin.reset(latency=1.5)
    await storage.store_session(seeded(standin, shop, access_expires_in=-10))
    pending = asyncio.ensure_future(_get(tokens, shop))
    await asyncio.to_thread(wait_for_token_request, standin, shop)
    await _apply(storage, "app/uninstalled", shop, uninstalled(shop), recorded.telemetry)
    assert not pending.done(), "the refresh landed before the uninstall (a slow machine?)"
    assert await pending is None

    assert recorded.count(names.REFRESHES, outcome="discarded") == 1
    assert recorded.count(names.WEBHOOKS, topic="app/uninstalled", effect="deleted") == 1
    [webhook] = recorded.spans("shopify_sessions.webhook")
    assert webhook.attributes[names.SHOP] == shop
    assert webhook.attributes[names.EFFECT] == "deleted"
    [refresh] = recorded.spans("shopify_sessions.token.refresh")
    assert refresh.attributes[names.OUTCOME] == "discarded"


@on_memory
async def test_webhooks_are_counted_by_topic_and_effect_and_scope_updates_time_their_lock(
    storage: Any, standin: StandIn, shop: str, recorded: Recorded
) -> None:
    await storage.store_session(seeded(standin, shop))
    scopes = scopes_update("read_products", "write_discounts")
    for topic, payload in [
        ("app/scopes_update", scopes),
        ("app/scopes_update", scopes),
        ("orders/create", {}),
        ("app/uninstalled", uninstalled(shop)),
    ]:
        await _apply(storage, topic, shop, payload, recorded.telemetry)
    assert recorded.count(names.WEBHOOKS, topic="app/scopes_update", effect="scope_updated") == 1
    assert recorded.count(names.WEBHOOKS, topic="app/scopes_update", effect="unchanged") == 1
    assert recorded.count(names.WEBHOOKS, topic="orders/create", effect="ignored") == 1
    assert recorded.count(names.WEBHOOKS, topic="app/uninstalled", effect="deleted") == 1
    assert recorded.count(names.LOCK_WAIT, operation="scopes_update", acquired=True) == 2
    assert len(recorded.spans("shopify_sessions.webhook")) == 4


@on_memory
async def test_legacy_exchanges_keep_warm_and_token_exchanges_have_their_own_counts(
    tokens: Any, storage: Any, standin: StandIn, shop: str, recorded: Recorded
) -> None:
    name = shop.removesuffix(".myshopify.com")
    legacy, warm, new = (f"{name}-{n}.myshopify.com" for n in range(3))
    await storage.store_session(seeded(standin, legacy, legacy=True))
    await storage.store_session(seeded(standin, warm, refresh_expires_in=86400))
    assert await tokens.migrate_legacy(legacy) is not None
    assert (await tokens.refresh_expiring(within=timedelta(days=7))).refreshed == [warm]
    verified = verifying_app(standin).verify_app_home_req(
        {
            "method": "GET",
            "headers": {"Authorization": f"Bearer {session_token(standin, new)}"},
            "url": "https://app.example/api",
            "body": "",
        },
        "/auth/patch-id-token",
    )
    assert (await tokens.get_or_exchange(verified)).shop == new

    legacy_done = {"operation": "legacy_exchange", "trigger": "migrate_legacy", "outcome": "done"}
    assert recorded.count(names.LEGACY_EXCHANGES, **legacy_done) == 1
    assert recorded.count(names.REFRESHES, trigger="keep_warm", outcome="done") == 1
    exchange_done = {"operation": "token_exchange", "trigger": "request", "outcome": "done"}
    assert recorded.count(names.TOKEN_EXCHANGES, **exchange_done) == 1
    assert recorded.count(names.RENEWAL_DURATION) == 3
    spans = {s.name: s for s in recorded.exporter.get_finished_spans()}
    assert spans["shopify_sessions.token.legacy_exchange"].attributes[names.SHOP] == legacy
    assert spans["shopify_sessions.token.exchange"].attributes[names.SHOP] == new


@on_memory
async def test_the_refresh_span_is_the_child_of_the_callers_span(
    tokens: Any, storage: Any, standin: StandIn, shop: str, recorded: Recorded
) -> None:
    """A web request's span (or a job's) is the parent, so a trace shows the refresh (and
    an instrumented httpx call under it) inside the request that waited for it."""
    await storage.store_session(seeded(standin, shop, access_expires_in=-10))
    tracer = recorded.telemetry._tracer
    with tracer.start_as_current_span("GET /app") as request_span:
        if isinstance(tokens, Awaited):
            tokens.target.get(shop)  # in this thread: the context is this thread's
        else:
            await tokens.get(shop)
    [refresh] = recorded.spans("shopify_sessions.token.refresh")
    assert refresh.parent is not None
    assert refresh.parent.span_id == request_span.get_span_context().span_id


def test_telemetry_refuses_anything_else() -> None:
    from shopify_sessions import MemorySessionStorage
    from shopify_sessions.tokens import OfflineTokens

    with pytest.raises(TypeError, match="Telemetry"):
        OfflineTokens(
            MemorySessionStorage(),
            client_id="a",
            client_secret="b",
            telemetry=object(),  # type: ignore[arg-type]
        )


def test_without_opentelemetry_nothing_changes_and_nothing_is_imported() -> None:
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed
from shopify_sessions import MemorySessionStorage, Session
from shopify_sessions.tokens import OfflineTokens
from shopify_sessions.telemetry import Telemetry
from shopify_sessions.webhooks import apply_webhook
from shopify_sessions.telemetry import default_telemetry

storage = MemorySessionStorage()
session = Session("offline_a.myshopify.com", "a.myshopify.com", "", False, access_token="t")
storage.store_session(session)
tokens = OfflineTokens(storage, client_id="id", client_secret="secret")
assert tokens.get("a") == session
assert apply_webhook(storage, topic="app/uninstalled", shop="a", payload={}).effect == "deleted"
print(repr(default_telemetry()))
try:
    Telemetry()
except ImportError as error:
    print(error)
else:
    raise SystemExit("Telemetry() without opentelemetry")
assert not [m for m in sys.modules if m.startswith("opentelemetry.")], "imported"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "off: opentelemetry-api is not installed" in done.stdout
    assert "pip install 'shopify-sessions[opentelemetry]'" in done.stdout


def test_the_telemetry_page_names_every_metric_attribute_span_and_value() -> None:
    page = (ROOT / "docs" / "telemetry.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([^`\s]+)`", page))
    constants = {
        value
        for key, value in vars(names).items()
        if key.isupper() and isinstance(value, str) and key != "SCOPE"
    }
    constants |= set(names.RENEWAL_SPANS.values()) | set(names.RENEWAL_SPANS)
    from shopify_sessions.tokens._base import ACTIONS
    from shopify_sessions.webhooks import _base as webhooks

    constants |= {value for pair in ACTIONS.values() for value in pair}
    constants |= {webhooks.DELETED, webhooks.SCOPE_UPDATED, webhooks.UNCHANGED, webhooks.IGNORED}
    constants |= {webhooks.LOCK_OPERATION, names.SCOPE}
    assert constants - documented == set()


# --- helpers ------------------------------------------------------------------------------


async def _get(tokens: Any, shop: str) -> Session | None:
    """``tokens.get(shop)``; a sync OfflineTokens in a thread, so that the loop goes on."""
    if isinstance(tokens, Awaited):
        return await asyncio.to_thread(tokens.target.get, shop)  # type: ignore[no-any-return]
    return await tokens.get(shop)  # type: ignore[no-any-return]


async def _apply(storage: Any, topic: str, shop: str, payload: Any, telemetry: Telemetry) -> Any:
    if isinstance(storage, Awaited):
        return apply_webhook(
            storage.target, topic=topic, shop=shop, payload=payload, telemetry=telemetry
        )
    return await apply_webhook_async(
        storage, topic=topic, shop=shop, payload=payload, telemetry=telemetry
    )
