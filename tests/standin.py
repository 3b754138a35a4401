"""A stand-in for Shopify's token endpoint and Admin API, as strict as Shopify.

Run as a process of its own (``python standin.py``: it prints its port), so that every
worker process of a test sees the same state. Shops are told apart by the Host header
(``my-shop.myshopify.com``); the tests route ``https://*.myshopify.com`` here.

- ``POST /admin/oauth/access_token``: refresh (``grant_type=refresh_token``), the
  legacy token exchange, and App Home's token exchange of a session token (HS256 with
  the app's secret) for an expiring offline pair. Refresh tokens rotate; in ``strict``
  mode a second use of a refresh token is a breach that revokes every token of the shop
  (a lockout); in ``grace`` mode (Shopify since 2026-08-28) a used refresh token stays
  usable until its replacement is used, and a repeated legacy exchange returns the same
  pair. A legacy token is exchanged once, and stops working for the Admin API when it is.
- ``POST /admin/api/<version>/graphql.json``: 200 with a valid access token, 401 for an
  expired, revoked or unknown one.
- ``/_control/...``: reset, configure, seed tokens, queue faults (``503``,
  ``invalid_grant``), read the counters.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

CLIENT_ID = "standin-client-id"
CLIENT_SECRET = "standin-client-secret-of-32-bytes-or-more"
REFRESH = "refresh_token"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
SCOPE = "read_products,write_orders"


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset({})

    def reset(self, config: dict[str, Any]) -> dict[str, Any]:
        self.mode = config.get("mode", "strict")
        self.access_lifetime = float(config.get("access_lifetime", 3600))
        self.refresh_lifetime = float(config.get("refresh_lifetime", 90 * 86400))
        self.omit_expires = bool(config.get("omit_expires", False))
        self.latency = float(config.get("latency", 0))
        self.access: dict[str, dict[str, Any]] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.legacy: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        # (shop, wall time) of every refresh that issued a pair, for per-lifetime checks
        self.issued: list[tuple[str, float]] = []
        return {}

    def _pair(self, shop: str, parent: str | None = None) -> dict[str, Any]:
        now = time.time()
        access, refresh = "shpat_" + secrets.token_hex(12), "shprt_" + secrets.token_hex(12)
        self.access[access] = {"shop": shop, "expires": now + self.access_lifetime}
        self.refresh[refresh] = {
            "shop": shop,
            "expires": now + self.refresh_lifetime,
            "used": False,
            "child": None,
            "parent": parent,
        }
        answer: dict[str, Any] = {
            "access_token": access,
            "scope": SCOPE,
            "refresh_token": refresh,
            "refresh_token_expires_in": int(self.refresh_lifetime),
        }
        if not self.omit_expires:
            answer["expires_in"] = int(self.access_lifetime)
        return answer

    def _revoke(self, shop: str) -> None:
        self.counts[shop]["lockouts"] += 1
        for table in (self.access, self.refresh):
            for record in table.values():
                if record["shop"] == shop:
                    record["revoked"] = True

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        shop = body["shop"]
        if body.get("kind") == "legacy":
            token = "shpat_legacy_" + secrets.token_hex(8)
            self.legacy[token] = {"shop": shop, "pair": None}
            return {"access_token": token, "scope": SCOPE}
        answer = self._pair(shop)
        if "access_expires_in" in body:  # e.g. already expired
            self.access[answer["access_token"]]["expires"] = time.time() + body["access_expires_in"]
            answer["expires_in"] = body["access_expires_in"]
        if "refresh_expires_in" in body:
            self.refresh[answer["refresh_token"]]["expires"] = (
                time.time() + body["refresh_expires_in"]
            )
            answer["refresh_token_expires_in"] = body["refresh_expires_in"]
        return answer

    def token(self, shop: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        counts = self.counts[shop]
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        if self.faults[shop]:
            fault = self.faults[shop].pop(0)
            counts[f"fault_{fault}"] += 1
            if fault == "503":
                return 503, {"errors": "Service Unavailable"}
            return 400, {"error": fault, "error_description": "injected"}
        grant = body.get("grant_type")
        if grant == REFRESH:
            return self._refresh(shop, body.get("refresh_token"), counts)
        if grant == EXCHANGE and body.get("subject_token_type") == OFFLINE:
            return self._exchange(shop, body, counts)
        if grant == EXCHANGE and body.get("subject_token_type") == ID_TOKEN:
            return self._exchange_id_token(shop, body, counts)
        return 400, {"error": "unsupported_grant_type"}

    def _refresh(self, shop: str, token: Any, counts: Counter[str]) -> tuple[int, dict[str, Any]]:
        counts["refresh_requests"] += 1
        record = self.refresh.get(token) if isinstance(token, str) else None
        if record is None or record["shop"] != shop or record.get("revoked"):
            counts["invalid_grant"] += 1
            return 400, {"error": "invalid_grant", "error_description": "unknown or revoked"}
        if record["expires"] <= time.time():
            counts["invalid_grant"] += 1
            return 400, {"error": "invalid_grant", "error_description": "expired"}
        if record["used"]:
            counts["reuses"] += 1
            child = self.refresh.get(record["child"] or "")
            if self.mode == "strict" or (child is not None and child["used"]):
                if self.mode == "strict":
                    self._revoke(shop)
                counts["invalid_grant"] += 1
                return 400, {"error": "invalid_grant", "error_description": "reused"}
            counts["grace_reuses"] += 1
            if child is not None:
                child["revoked"] = True  # replaced by the pair issued now
        record["used"] = True
        answer = self._pair(shop, parent=token)
        record["child"] = answer["refresh_token"]
        counts["refreshes"] += 1
        self.issued.append((shop, time.time()))
        return 200, answer

    def _exchange(
        self, shop: str, body: dict[str, Any], counts: Counter[str]
    ) -> tuple[int, dict[str, Any]]:
        counts["exchange_requests"] += 1
        record = self.legacy.get(body.get("subject_token") or "")
        if record is None or record["shop"] != shop or body.get("requested_token_type") != OFFLINE:
            return 400, {"error": "invalid_subject_token"}
        if str(body.get("expiring")) != "1":
            return 400, {"error": "invalid_request", "error_description": "expiring=1 expected"}
        if record["pair"] is not None:
            counts["exchange_repeats"] += 1
            pair = record["pair"]
            if self.mode == "grace" and not self.refresh[pair["refresh_token"]]["used"]:
                return 200, pair
            return 400, {"error": "invalid_subject_token", "error_description": "exchanged"}
        record["pair"] = self._pair(shop)
        counts["exchanges"] += 1
        return 200, record["pair"]

    def _exchange_id_token(
        self, shop: str, body: dict[str, Any], counts: Counter[str]
    ) -> tuple[int, dict[str, Any]]:
        """App Home's token exchange: a session token signed with the app's secret."""
        counts["id_token_exchanges"] += 1
        try:
            claims = jwt.decode(
                body.get("subject_token") or "",
                CLIENT_SECRET,
                algorithms=["HS256"],
                audience=CLIENT_ID,
            )
        except jwt.PyJWTError:
            return 400, {"error": "invalid_subject_token"}
        if claims.get("dest") != f"https://{shop}":
            return 400, {"error": "invalid_subject_token", "error_description": "wrong shop"}
        if body.get("requested_token_type") != OFFLINE or str(body.get("expiring")) != "1":
            return 400, {"error": "invalid_request", "error_description": "expiring offline only"}
        return 200, self._pair(shop)

    def admin(self, shop: str, token: str | None) -> tuple[int, dict[str, Any]]:
        counts = self.counts[shop]
        record = self.access.get(token or "")
        legacy = self.legacy.get(token or "")
        valid = (
            record is not None
            and record["shop"] == shop
            and not record.get("revoked")
            and record["expires"] > time.time()
        ) or (legacy is not None and legacy["shop"] == shop and legacy["pair"] is None)
        if not valid:
            counts["admin_401"] += 1
            return 401, {"errors": "[API] Invalid API key or access token"}
        counts["admin_ok"] += 1
        return 200, {"data": {"shop": {"name": shop}, "productsCount": {"count": 42}}}

    def stats(self) -> dict[str, Any]:
        return {
            "counts": {shop: dict(counter) for shop, counter in self.counts.items()},
            "issued": self.issued,
        }


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client died waiting
            self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def do_GET(self) -> None:
        if self.path == "/_control/stats":
            with STATE.lock:
                self._answer(200, STATE.stats())
        else:
            self._answer(404, {})

    def do_POST(self) -> None:
        body = self._body()
        shop = (self.headers.get("Host") or "").split(":")[0]
        if self.path.startswith("/_control/"):
            action = self.path.removeprefix("/_control/")
            with STATE.lock:
                if action == "reset":
                    self._answer(200, STATE.reset(body))
                elif action == "seed":
                    self._answer(200, STATE.seed(body))
                elif action == "fault":
                    STATE.faults[body["shop"]].extend(body["faults"])
                    self._answer(200, {})
                else:
                    self._answer(404, {})
            return
        if self.path == "/admin/oauth/access_token":
            with STATE.lock:
                STATE.counts[shop]["arrived"] += 1
            if STATE.latency:
                time.sleep(STATE.latency)
            with STATE.lock:
                status, answer = STATE.token(shop, body)
            self._answer(status, answer)
        elif self.path.startswith("/admin/api/") and self.path.endswith("/graphql.json"):
            with STATE.lock:
                status, answer = STATE.admin(shop, self.headers.get("X-Shopify-Access-Token"))
            self._answer(status, answer)
        else:
            self._answer(404, {"errors": "Not Found"})


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    # Stop with the test process: it holds our stdin open until it exits.
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
