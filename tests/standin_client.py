"""The tests' side of the Shopify stand-in: start it, steer it, and route httpx to it."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from shopify_sessions import Session, offline_session_id
from shopify_sessions._time import utc_now

API_VERSION = "2026-10"
SERVER = Path(__file__).with_name("standin.py")


def _routed(request: httpx.Request, port: int) -> None:
    if not request.url.host.endswith(".myshopify.com"):
        raise httpx.ConnectError(f"only the stand-in is reachable, not {request.url.host}")
    # The Host header keeps the shop; only the address changes.
    request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)


class RoutingTransport(httpx.HTTPTransport):
    """Sends ``https://<shop>.myshopify.com/...`` to the stand-in, Host header unchanged."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _routed(request, self.port)
        return super().handle_request(request)


class AsyncRoutingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _routed(request, self.port)
        return await super().handle_async_request(request)


class StandIn:
    """A running stand-in process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.control = httpx.Client(base_url=f"http://127.0.0.1:{self.port}/_control/")

    def close(self) -> None:
        self.control.close()
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def reset(self, **config: Any) -> None:
        self.control.post("reset", json=config).raise_for_status()

    def seed(self, shop: str, **options: Any) -> dict[str, Any]:
        response = self.control.post("seed", json={"shop": shop, **options})
        response.raise_for_status()
        return dict(response.json())

    def fault(self, shop: str, *faults: str) -> None:
        self.control.post("fault", json={"shop": shop, "faults": list(faults)}).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.control.get("stats").json())

    def counts(self, shop: str) -> dict[str, int]:
        return dict(self.stats()["counts"].get(shop, {}))

    def client(self) -> httpx.Client:
        return httpx.Client(transport=RoutingTransport(self.port), timeout=10)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=AsyncRoutingTransport(self.port), timeout=10)

    def seeded_session(self, shop: str, **options: Any) -> Session:
        """An offline session holding a pair (or, with kind="legacy", a token) just issued."""
        answer = self.seed(shop, **options)
        now = utc_now()
        session = Session(
            offline_session_id(shop),
            shop,
            "",
            False,
            scope=answer["scope"],
            access_token=answer["access_token"],
        )
        if "refresh_token" in answer:
            session.expires = now + timedelta(seconds=answer["expires_in"])
            session.refresh_token = answer["refresh_token"]
            session.refresh_token_expires = now + timedelta(
                seconds=answer["refresh_token_expires_in"]
            )
        return session


def admin_call(client: httpx.Client, shop: str, token: str | None) -> int:
    """Call the Admin API with ``token`` as an app would; the HTTP status."""
    response = client.post(
        f"https://{shop}/admin/api/{API_VERSION}/graphql.json",
        headers={"X-Shopify-Access-Token": token or ""},
        json={"query": "{ shop { name } }"},
    )
    return response.status_code
