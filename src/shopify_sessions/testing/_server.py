"""The fake's HTTP server: Shopify's paths, and a control path for the tests.

Shops are told apart by the Host header (``my-shop.myshopify.com``), which the routing
transports keep; only the address changes.

- ``POST /admin/oauth/access_token``: refreshes, legacy exchanges and App Home's token
  exchange (:class:`~._state.ShopifyState`).
- ``POST /admin/api/<version>/graphql.json``: 200 with a valid access token, 401 without.
- ``POST /_fake/<action>``: reset, seed, fail, revoke, accepts, counters, app: what a
  :class:`~shopify_sessions.testing.FakeShopify` (in any process) asks.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._state import Answer, Settings, ShopifyState

CONTROL = "/_fake/"


class Server(ThreadingHTTPServer):
    """A threading HTTP server (on 127.0.0.1, any free port, unless told otherwise) that
    holds one :class:`ShopifyState`."""

    daemon_threads = True
    #: The listen backlog: a fleet run opens dozens of connections at once, which the
    #: default of 5 would drop (the client's SYN retried a second later, or reset).
    request_queue_size = 1024

    def __init__(self, state: ShopifyState, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), Handler)
        self.state = state
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", ""):  # every interface: this machine reaches it at 127.0.0.1
            host = "127.0.0.1"
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a test's output is the test's

    def do_POST(self) -> None:
        state = self.server.state
        body = self._body()
        shop = (self.headers.get("Host") or "").split(":")[0]
        if self.path.startswith(CONTROL):
            self._answer(*self._control(state, self.path.removeprefix(CONTROL), body))
        elif self.path == "/admin/oauth/access_token":
            with state.lock:
                state.counts[shop]["token_requests"] += 1
                latency = state.settings.latency
                limited = state.limited(shop)
            if limited is not None:  # at once, as an edge answers it
                status, answer, retry_after = limited
                self._answer(status, answer, {"Retry-After": f"{retry_after:.3f}"})
                return
            if latency:
                time.sleep(latency)  # outside the lock: requests wait side by side
            with state.lock:
                self._answer(*state.token(shop, body))
        elif self.path.startswith("/admin/api/") and self.path.endswith("/graphql.json"):
            with state.lock:
                self._answer(*state.admin(shop, self.headers.get("X-Shopify-Access-Token")))
        else:
            self._answer(404, {"errors": "Not Found"})

    def do_GET(self) -> None:
        self._answer(404, {"errors": "Not Found"})

    @staticmethod
    def _control(state: ShopifyState, action: str, body: dict[str, Any]) -> Answer:
        with state.lock:
            if action == "reset":
                try:
                    return state.reset(Settings.parse(body))
                except (TypeError, ValueError) as error:
                    return 400, {"error": str(error)}
            if action == "seed":
                return state.seed(
                    body["shop"],
                    bool(body.get("legacy")),
                    body.get("expires_in"),
                    body.get("refresh_token_expires_in"),
                )
            if action == "fail":
                return state.fail(body["shop"], list(body["failures"]))
            if action == "revoke":
                return state.revoke(body["shop"])
            if action == "accepts":
                return state.accepts(body["shop"], body["access_token"])
            if action == "counters":
                return state.counters(body["shop"])
            if action == "limit_rate":
                return state.limit_rate(body.get("per_second"))
            if action == "totals":
                return state.totals()
            if action == "app":
                return 200, {"client_id": state.client_id, "client_secret": state.client_secret}
        return 404, {"error": f"no control action {action!r}"}

    def _answer(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
