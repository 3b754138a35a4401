"""What the fake Shopify knows and decides, without I/O: tokens, grants, counters.

Every method is called with the state's lock held (the server serialises them); each
answers ``(HTTP status, JSON body)``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

REFRESH_GRANT = "refresh_token"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE_TOKEN = "urn:shopify:params:oauth:token-type:online-access-token"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
SCOPE = "read_products,write_orders"
#: What a staff user may do of the app's scopes (``associated_user_scope``).
USER_SCOPE = "read_products"
#: Seconds an online access token lasts, as Shopify answers (a day, less a second).
ONLINE_LIFETIME = 86399
MODES = ("strict", "grace")

Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Settings:
    """How the fake behaves until the next reset."""

    mode: str = "strict"
    access_lifetime: float = 3600.0
    refresh_lifetime: float = 90 * 86400.0
    latency: float = 0.0
    omit_expires: bool = False

    @classmethod
    def parse(cls, values: dict[str, Any]) -> Settings:
        """Settings from JSON, checked; unknown keys are refused."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = cls(**values)
        if settings.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {settings.mode!r}")
        for name in ("access_lifetime", "refresh_lifetime", "latency"):
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds, zero or more")
        return settings


def jwt_module() -> Any:
    """PyJWT, which session tokens are made and checked with, or an ImportError that names
    the extra that brings it (before Python's own ``No module named 'jwt'``)."""
    try:
        import jwt
    except ImportError as error:
        raise ImportError(
            "FakeShopify's session tokens need PyJWT: pip install 'shopify-sessions[testing]'",
            name="jwt",
        ) from error
    return jwt


class ShopifyState:
    """Tokens of every shop, the failures queued for them, and what happened to them."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.lock = threading.Lock()
        self.reset(Settings())

    def reset(self, settings: Settings) -> Answer:
        self.settings = settings
        self.access: dict[str, dict[str, Any]] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.legacy: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, list[str | int]] = defaultdict(list)
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.refreshed_at: dict[str, list[float]] = defaultdict(list)
        self.rate_limit: int | None = None
        self.window: tuple[int, int] = (0, 0)  # (second, token requests in it)
        return 200, {}

    # --- the control side ------------------------------------------------------------

    def seed(
        self,
        shop: str,
        legacy: bool,
        expires_in: float | None,
        refresh_token_expires_in: float | None,
    ) -> Answer:
        """A token (legacy) or a pair issued to ``shop`` without any request."""
        if legacy:
            token = "shpat_legacy_" + secrets.token_hex(12)
            self.legacy[token] = {"shop": shop, "pair": None}
            return 200, {"access_token": token, "scope": SCOPE}
        answer = self._pair(shop)
        now = time.time()
        if expires_in is None:
            expires_in = self.settings.access_lifetime
        self.access[answer["access_token"]]["expires"] = now + expires_in
        answer["expires_in"] = expires_in
        if refresh_token_expires_in is not None:
            self.refresh[answer["refresh_token"]]["expires"] = now + refresh_token_expires_in
            answer["refresh_token_expires_in"] = refresh_token_expires_in
        return 200, answer

    def fail(self, shop: str, failures: list[str | int]) -> Answer:
        self.failures[shop].extend(failures)
        return 200, {}

    def revoke(self, shop: str) -> Answer:
        """Every token of ``shop`` stops working, as when the merchant uninstalls the app."""
        self._revoke(shop)
        for record in self.legacy.values():
            if record["shop"] == shop:
                record["revoked"] = True
        return 200, {}

    def accepts(self, shop: str, token: str) -> Answer:
        return 200, {"accepted": self._valid(shop, token)}

    def limit_rate(self, per_second: int | None) -> Answer:
        """Answer 429 (with ``Retry-After``) to the token requests past ``per_second`` in
        each second of the clock; ``None``: no limit. Until the next reset."""
        if per_second is not None and (
            isinstance(per_second, bool) or not isinstance(per_second, int) or per_second < 1
        ):
            return 400, {"error": "per_second must be an int of 1 or more, or null"}
        self.rate_limit, self.window = per_second, (0, 0)
        return 200, {}

    def limited(self, shop: str) -> tuple[int, dict[str, Any], float] | None:
        """The 429 for a token request past the rate limit: ``(429, body, Retry-After)``
        (the seconds left of this second), or ``None`` to go on."""
        if self.rate_limit is None:
            return None
        now = time.time()
        second, seen = self.window
        if int(now) != second:
            second, seen = int(now), 0
        self.window = (second, seen + 1)
        if seen < self.rate_limit:
            return None
        self.counts[shop]["rate_limited"] += 1
        body = {"errors": "Exceeded the token endpoint's rate limit; retry after Retry-After"}
        return 429, body, second + 1 - now

    def totals(self) -> Answer:
        """Every counter summed over the shops."""
        total: Counter[str] = Counter()
        for counts in self.counts.values():
            total.update(counts)
        return 200, {"counters": dict(total), "shops": len(self.counts)}

    def counters(self, shop: str) -> Answer:
        return 200, {
            "counters": dict(self.counts.get(shop, {})),
            "refreshed_at": list(self.refreshed_at.get(shop, [])),
        }

    # --- the token endpoint ------------------------------------------------------------

    def token(self, shop: str, body: dict[str, Any]) -> Answer:
        counts = self.counts[shop]
        if body.get("client_id") != self.client_id or not secrets.compare_digest(
            str(body.get("client_secret")), self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        if self.failures[shop]:
            failure = self.failures[shop].pop(0)
            counts["failures"] += 1
            if isinstance(failure, int):
                return failure, {"errors": f"injected HTTP {failure}"}
            return 400, {"error": failure, "error_description": "injected"}
        grant = body.get("grant_type")
        if grant == REFRESH_GRANT:
            return self._refresh(shop, body.get("refresh_token"), counts)
        if grant == EXCHANGE_GRANT and body.get("subject_token_type") == OFFLINE_TOKEN:
            return self._exchange(shop, body, counts)
        if grant == EXCHANGE_GRANT and body.get("subject_token_type") == ID_TOKEN:
            return self._exchange_id_token(shop, body, counts)
        return 400, {"error": "unsupported_grant_type"}

    def _refresh(self, shop: str, token: object, counts: Counter[str]) -> Answer:
        counts["refresh_requests"] += 1
        record = self.refresh.get(token) if isinstance(token, str) else None
        if record is None or record["shop"] != shop or record.get("revoked"):
            counts["invalid_grants"] += 1
            return 400, {"error": "invalid_grant", "error_description": "unknown or revoked"}
        if record["expires"] <= time.time():
            counts["invalid_grants"] += 1
            return 400, {"error": "invalid_grant", "error_description": "expired"}
        if record["used"]:
            counts["reuses"] += 1
            child = self.refresh.get(record["child"] or "")
            if self.settings.mode == "strict" or (child is not None and child["used"]):
                if self.settings.mode == "strict":  # a breach: the whole family goes
                    counts["lockouts"] += 1
                    self._revoke(shop)
                counts["invalid_grants"] += 1
                return 400, {"error": "invalid_grant", "error_description": "reused"}
            counts["grace_reuses"] += 1
            if child is not None:
                child["revoked"] = True  # replaced by the pair issued now
        record["used"] = True
        answer = self._pair(shop)
        record["child"] = answer["refresh_token"]
        counts["refreshes"] += 1
        self.refreshed_at[shop].append(time.time())
        return 200, answer

    def _exchange(self, shop: str, body: dict[str, Any], counts: Counter[str]) -> Answer:
        counts["exchange_requests"] += 1
        record = self.legacy.get(body.get("subject_token") or "")
        if (
            record is None
            or record["shop"] != shop
            or record.get("revoked")
            or body.get("requested_token_type") != OFFLINE_TOKEN
        ):
            return 400, {"error": "invalid_subject_token"}
        if str(body.get("expiring")) != "1":
            return 400, {"error": "invalid_request", "error_description": "expiring=1 expected"}
        if record["pair"] is not None:
            counts["exchange_repeats"] += 1
            pair = record["pair"]
            if self.settings.mode == "grace" and not self.refresh[pair["refresh_token"]]["used"]:
                return 200, pair
            return 400, {"error": "invalid_subject_token", "error_description": "exchanged"}
        pair = record["pair"] = self._pair(shop)
        counts["exchanges"] += 1
        return 200, pair

    def _exchange_id_token(self, shop: str, body: dict[str, Any], counts: Counter[str]) -> Answer:
        """App Home's token exchange: a session token signed with the app's secret, for an
        expiring offline pair or the staff user's online token."""
        counts["id_token_exchanges"] += 1
        try:
            jwt = jwt_module()
        except ImportError as error:  # told to the app's test, not lost in the server thread
            return 500, {"errors": str(error)}
        try:
            claims = jwt.decode(
                body.get("subject_token") or "",
                self.client_secret,
                algorithms=["HS256"],
                audience=self.client_id,
            )
        except jwt.PyJWTError:
            return 400, {"error": "invalid_subject_token"}
        if claims.get("dest") != f"https://{shop}":
            return 400, {"error": "invalid_subject_token", "error_description": "wrong shop"}
        requested = body.get("requested_token_type")
        if requested == ONLINE_TOKEN:
            return self._online_token(shop, claims)
        if requested != OFFLINE_TOKEN or str(body.get("expiring")) != "1":
            return 400, {"error": "invalid_request", "error_description": "expiring offline only"}
        return 200, self._pair(shop)

    def _online_token(self, shop: str, claims: dict[str, Any]) -> Answer:
        """An online access token for the staff user of the session token (``sub``), as
        Shopify answers it: no refresh token, the user and what the user may do."""
        user = str(claims.get("sub") or "")
        if not user.isdigit():
            return 400, {"error": "invalid_subject_token", "error_description": "no user"}
        access = "shpua_" + secrets.token_hex(16)
        self.access[access] = {"shop": shop, "expires": time.time() + ONLINE_LIFETIME}
        return 200, {
            "access_token": access,
            "scope": SCOPE,
            "expires_in": ONLINE_LIFETIME,
            "associated_user_scope": USER_SCOPE,
            "associated_user": {
                "id": int(user),
                "first_name": "Staff",
                "last_name": f"Member {user}",
                "email": f"staff-{user}@example.com",
                "account_owner": False,
                "locale": "en",
                "collaborator": False,
                "email_verified": True,
            },
        }

    # --- the Admin API ---------------------------------------------------------------

    def admin(self, shop: str, token: str | None) -> Answer:
        counts = self.counts[shop]
        if not self._valid(shop, token or ""):
            counts["admin_401"] += 1
            return 401, {"errors": "[API] Invalid API key or access token"}
        counts["admin_200"] += 1
        return 200, {"data": {"shop": {"name": shop}, "productsCount": {"count": 42}}}

    # --- helpers ---------------------------------------------------------------------

    def _valid(self, shop: str, token: str) -> bool:
        record = self.access.get(token)
        if record is not None:
            return (
                record["shop"] == shop
                and not record.get("revoked")
                and record["expires"] > time.time()
            )
        legacy = self.legacy.get(token)  # works until it is exchanged
        return (
            legacy is not None
            and legacy["shop"] == shop
            and legacy["pair"] is None
            and not legacy.get("revoked")
        )

    def _pair(self, shop: str) -> dict[str, Any]:
        now, settings = time.time(), self.settings
        access, refresh = "shpat_" + secrets.token_hex(16), "shprt_" + secrets.token_hex(16)
        self.access[access] = {"shop": shop, "expires": now + settings.access_lifetime}
        self.refresh[refresh] = {
            "shop": shop,
            "expires": now + settings.refresh_lifetime,
            "used": False,
            "child": None,
        }
        answer: dict[str, Any] = {
            "access_token": access,
            "scope": SCOPE,
            "refresh_token": refresh,
            "refresh_token_expires_in": int(settings.refresh_lifetime),
        }
        if not settings.omit_expires:
            answer["expires_in"] = int(settings.access_lifetime)
        return answer

    def _revoke(self, shop: str) -> None:
        for table in (self.access, self.refresh):
            for record in table.values():
                if record["shop"] == shop:
                    record["revoked"] = True
