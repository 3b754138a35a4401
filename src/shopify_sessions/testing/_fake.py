"""FakeShopify: a strict local Shopify (token endpoint and Admin API) for an app's tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field, fields
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit

from .._session import Session
from .._shop import sanitize_shop
from .._time import utc_now
from ._server import CONTROL, Server
from ._state import Settings, ShopifyState, jwt_module

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class Counters:
    """What a :class:`FakeShopify` saw of one shop since it was started or reset.

    Attributes:
        token_requests: requests that reached the token endpoint, whatever their outcome.
        refresh_requests: refreshes asked for (an injected failure is not one).
        refreshes: refreshes answered with a new pair.
        reuses: refreshes with a refresh token that had been used before.
        grace_reuses: reuses honoured (``grace`` mode: its replacement was unused).
        lockouts: reuses that revoked every token of the shop (``strict`` mode).
        invalid_grants: refreshes refused with ``invalid_grant`` (unknown, revoked,
            expired or reused refresh token).
        exchange_requests: legacy token exchanges asked for.
        exchanges: legacy tokens exchanged for a pair (once per token).
        exchange_repeats: exchanges of a legacy token already exchanged.
        id_token_exchanges: App Home token exchanges of a session token (for an offline
            pair or an online token).
        failures: answers replaced by a failure queued with :meth:`FakeShopify.fail`.
        admin_200: Admin API calls answered 200.
        admin_401: Admin API calls refused with 401 (expired, revoked or unknown token).
        rate_limited: token requests answered 429 by :meth:`FakeShopify.limit_rate`.
    """

    token_requests: int = 0
    refresh_requests: int = 0
    refreshes: int = 0
    reuses: int = 0
    grace_reuses: int = 0
    lockouts: int = 0
    invalid_grants: int = 0
    exchange_requests: int = 0
    exchanges: int = 0
    exchange_repeats: int = 0
    id_token_exchanges: int = 0
    failures: int = 0
    admin_200: int = 0
    admin_401: int = 0
    rate_limited: int = 0


#: The Admin API version that :meth:`FakeShopify.webhook` says the payload is in.
WEBHOOK_API_VERSION = "2026-10"


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """A webhook as Shopify delivers it (:meth:`FakeShopify.webhook`): POST ``body`` with
    ``headers`` to the app's webhook route.

    Attributes:
        topic: the topic, such as ``app/uninstalled``.
        shop: the shop's domain.
        body: the JSON payload, as bytes (what the HMAC signs).
        headers: ``Content-Type``, ``X-Shopify-Topic``, ``X-Shopify-Hmac-Sha256`` (the
            body's HMAC-SHA256 with the app's secret, in base64), ``X-Shopify-Shop-Domain``,
            ``X-Shopify-API-Version``, ``X-Shopify-Webhook-Id``, ``X-Shopify-Event-Id`` and
            ``X-Shopify-Triggered-At``.
    """

    topic: str
    shop: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FakeShopify:
    """A local Shopify for an app's tests: the token endpoint and the Admin API, as strict
    as Shopify, on a real HTTP server of its own (a thread) at 127.0.0.1.

    Use it as a context manager, which starts and stops it::

        with FakeShopify() as shopify:
            session = shopify.seed_offline("my-shop.myshopify.com")
            ...

    or through the pytest fixture ``fake_shopify``. An app reaches it through the httpx
    clients of :meth:`http_client` and :meth:`async_http_client`, which send every
    request for ``https://<shop>.myshopify.com`` here (and refuse any other host): pass
    one as ``OfflineTokens(http_client=...)``.

    What it does, like Shopify:

    - a refresh (``grant_type=refresh_token``) answers a new access token and a new
      refresh token; the used refresh token is spent. In ``strict`` mode a second use
      of a refresh token is a breach that revokes every token of the shop (a lockout);
      in ``grace`` mode (Shopify since 2026-08-28) it stays usable until its
      replacement is used;
    - a legacy token is exchanged for an expiring pair once; the legacy token then stops
      working. In ``grace`` mode a repeated exchange answers the same pair until that
      pair is used;
    - App Home's token exchange of a session token (:meth:`session_token`) answers an
      expiring offline pair, or, asked for an online token, the staff user's (``sub``)
      online token: a day long, no refresh token, with ``associated_user`` and
      ``associated_user_scope``;
    - ``POST /admin/api/<version>/graphql.json`` answers 200 (a small canned result) to a
      valid access token, and 401 to an expired, revoked, exchanged or unknown one.

    A ``FakeShopify`` can be pickled to another process (``multiprocessing``), or reached
    from one with :meth:`attach`: the copy talks to the same server (its tokens, its
    counters); only the one that started it stops it.

    Args:
        mode: ``"strict"`` or ``"grace"``.
        access_lifetime: seconds an access token lasts (Shopify: an hour).
        refresh_lifetime: seconds a refresh token lasts (Shopify: 90 days).
        latency: seconds the token endpoint waits before it answers.
        omit_expires: answer refreshes without ``expires_in``, as a faulty proxy might
            (shopify-app-js #3400).
        client_id: the app's client id it accepts.
        client_secret: the app's client secret it accepts; a random one by default.
    """

    __slots__ = ("_client_id", "_client_secret", "_server", "_settings", "_url")

    def __init__(
        self,
        *,
        mode: Literal["strict", "grace"] = "strict",
        access_lifetime: float = 3600.0,
        refresh_lifetime: float = 90 * 86400.0,
        latency: float = 0.0,
        omit_expires: bool = False,
        client_id: str = "fake-shopify-client-id",
        client_secret: str | None = None,
    ) -> None:
        self._settings = Settings.parse(
            {
                "mode": mode,
                "access_lifetime": access_lifetime,
                "refresh_lifetime": refresh_lifetime,
                "latency": latency,
                "omit_expires": omit_expires,
            }
        )
        for name, value in (("client_id", client_id), ("client_secret", client_secret)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty str")
        self._client_id = client_id
        self._client_secret = client_secret or secrets.token_urlsafe(32)
        self._server: Server | None = None
        self._url: str | None = None

    @classmethod
    def attach(cls, url: str) -> FakeShopify:
        """A handle on the ``FakeShopify`` that another process started at ``url``."""
        handle = cls.__new__(cls)
        handle._server, handle._url, handle._settings = None, url, Settings()
        app = handle._control("app")
        handle._client_id, handle._client_secret = app["client_id"], app["client_secret"]
        return handle

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).attach, (self.url,))

    def __enter__(self) -> FakeShopify:
        if self._url is not None:
            raise RuntimeError("this FakeShopify is running already")
        state = ShopifyState(self._client_id, self._client_secret)
        state.reset(self._settings)
        self._server = Server(state)
        self._server.start()
        self._url = self._server.url
        return self

    def __exit__(
        self,
        type: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, self._server, self._url = self._server, None, None
        if server is not None:
            server.stop()

    def __repr__(self) -> str:
        where = self._url or "not running"
        return f"FakeShopify({where}, client_id={self._client_id!r})"

    @property
    def client_id(self) -> str:
        """The app's client id it accepts (``OfflineTokens(client_id=...)``)."""
        return self._client_id

    @property
    def client_secret(self) -> str:
        """The app's client secret it accepts (``OfflineTokens(client_secret=...)``)."""
        return self._client_secret

    @property
    def url(self) -> str:
        """Where it listens: ``http://127.0.0.1:<port>``."""
        if self._url is None:
            raise RuntimeError("FakeShopify is not running: use it as a context manager")
        return self._url

    def http_client(self, **options: Any) -> httpx.Client:
        """An ``httpx.Client`` whose requests to ``https://<shop>.myshopify.com`` reach
        this fake. ``options`` go to ``httpx.Client`` (a 10 s timeout by default)."""
        from ._transport import sync_client

        return sync_client(self.url, options)

    def async_http_client(self, **options: Any) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` twin of :meth:`http_client`."""
        from ._transport import async_client

        return async_client(self.url, options)

    def reset(
        self,
        *,
        mode: Literal["strict", "grace"] | None = None,
        access_lifetime: float | None = None,
        refresh_lifetime: float | None = None,
        latency: float | None = None,
        omit_expires: bool | None = None,
    ) -> None:
        """Forget every token, queued failure and counter, and take these settings (as
        the constructor's); a setting not given is the one it was made with."""
        given = {
            "mode": mode,
            "access_lifetime": access_lifetime,
            "refresh_lifetime": refresh_lifetime,
            "latency": latency,
            "omit_expires": omit_expires,
        }
        settings = {f.name: getattr(self._settings, f.name) for f in fields(Settings)}
        settings.update({name: value for name, value in given.items() if value is not None})
        self._control("reset", **settings)

    def seed_offline(
        self,
        shop: str,
        *,
        legacy: bool = False,
        expires_in: float | None = None,
        refresh_token_expires_in: float | None = None,
    ) -> Session:
        """Issue an offline token to ``shop`` and return its session, ready to store.

        The session holds a fresh expiring pair (an access token and a refresh token),
        or with ``legacy=True`` a non-expiring token that
        :meth:`~shopify_sessions.tokens.OfflineTokens.migrate_legacy` can exchange.

        Args:
            shop: ``my-shop.myshopify.com`` or ``my-shop``.
            legacy: issue a legacy (non-expiring) token instead of a pair.
            expires_in: seconds the access token lasts from now (the fake's
                ``access_lifetime`` by default); negative for one that has expired.
            refresh_token_expires_in: seconds the refresh token lasts from now.
        """
        domain = _domain(shop)
        answer = self._control(
            "seed",
            shop=domain,
            legacy=bool(legacy),
            expires_in=expires_in,
            refresh_token_expires_in=refresh_token_expires_in,
        )
        now = utc_now()
        session = Session.offline(
            domain, scope=answer["scope"], access_token=answer["access_token"]
        )
        if not legacy:
            session.expires = now + timedelta(seconds=answer["expires_in"])
            session.refresh_token = answer["refresh_token"]
            session.refresh_token_expires = now + timedelta(
                seconds=answer["refresh_token_expires_in"]
            )
        return session

    def fail(self, shop: str, *failures: str | int) -> None:
        """Answer the next requests of ``shop`` to the token endpoint with failures, one
        each, in order: an ``int`` is an HTTP status (``503``, ``429``), a ``str`` an
        OAuth error answered with 400 (``"invalid_grant"``). Nothing is issued for them."""
        for failure in failures:
            if isinstance(failure, bool) or not isinstance(failure, (int, str)) or not failure:
                raise ValueError(f"a failure is an HTTP status or an OAuth error, not {failure!r}")
        self._control("fail", shop=_domain(shop), failures=list(failures))

    def revoke(self, shop: str) -> None:
        """Revoke every token of ``shop``, as when the merchant uninstalls the app: the
        Admin API answers 401 to them and refreshes get ``invalid_grant``."""
        self._control("revoke", shop=_domain(shop))

    def accepts(self, shop: str, access_token: str | None) -> bool:
        """Whether the Admin API would accept ``access_token`` for ``shop`` now (not
        counted as a call)."""
        answer = self._control("accepts", shop=_domain(shop), access_token=access_token)
        return bool(answer["accepted"])

    def counters(self, shop: str) -> Counters:
        """What it saw of ``shop`` since it was started or reset."""
        return Counters(**self._control("counters", shop=_domain(shop))["counters"])

    def refreshed_at(self, shop: str) -> list[float]:
        """When (``time.time()`` on the fake's clock) it answered each refresh of ``shop``."""
        return [float(at) for at in self._control("counters", shop=_domain(shop))["refreshed_at"]]

    def session_token(self, shop: str, *, user_id: int = 42) -> str:
        """A session token (ID token) for ``shop`` as App Bridge sends it to an embedded
        app: an HS256 JWT signed with :attr:`client_secret`, valid for a minute. The
        token endpoint exchanges it for an expiring offline pair.

        Raises:
            ImportError: PyJWT is not installed (``pip install 'shopify-sessions[testing]'``).
        """
        jwt = jwt_module()
        domain, now = _domain(shop), int(time.time())
        claims = {
            "iss": f"https://{domain}/admin",
            "dest": f"https://{domain}",
            "aud": self._client_id,
            "sub": str(user_id),
            "exp": now + 60,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "sid": uuid.uuid4().hex,
        }
        token: str = jwt.encode(claims, self._client_secret, algorithm="HS256")
        return token

    def webhook(
        self,
        topic: str,
        shop: str,
        payload: Any = None,
        *,
        webhook_id: str | None = None,
        secret: str | None = None,
    ) -> SignedWebhook:
        """A webhook of ``topic`` for ``shop`` as Shopify delivers it, signed with
        :attr:`client_secret`: its body and headers, to POST to the app's webhook route.

        Args:
            topic: any topic (``app/uninstalled``, ``app/scopes_update``,
                ``shop/redact``, ``orders/create``, ...).
            shop: ``my-shop.myshopify.com`` or ``my-shop``.
            payload: what to send: JSON-serialisable, or ``bytes`` sent as they are;
                by default the shop's ``domain`` and ``myshopify_domain`` (what
                ``app/uninstalled`` carries).
            webhook_id: ``X-Shopify-Webhook-Id`` (a new UUID by default): send the same
                one twice to test a retried delivery.
            secret: sign with this instead (a forged webhook, which the app must refuse).
        """
        domain = _domain(shop)
        if not isinstance(topic, str) or not topic:
            raise ValueError("topic must be a non-empty str, such as 'app/uninstalled'")
        if payload is None:
            payload = {"domain": domain, "myshopify_domain": domain}
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        key = (self._client_secret if secret is None else secret).encode()
        signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": domain,
            "X-Shopify-API-Version": WEBHOOK_API_VERSION,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": utc_now().isoformat().replace("+00:00", "Z"),
        }
        return SignedWebhook(topic, domain, body, headers)

    def app_home_url(self, shop: str, path: str = "/", *, user_id: int = 42) -> str:
        """The URL (path and query) at which Shopify's admin loads an embedded app's App
        Home for ``shop``: ``embedded=1``, ``host``, ``id_token`` (a fresh
        :meth:`session_token` for the staff user ``user_id``), ``locale``, ``session``,
        ``shop``, ``timestamp`` and their ``hmac`` (signed with :attr:`client_secret`).
        Pass it to the test client's ``get``.

        Args:
            shop: ``my-shop.myshopify.com`` or ``my-shop``.
            path: the App Home route (``/`` by default).
            user_id: the staff user the session token is for (its ``sub``).
        """
        if not isinstance(path, str) or not path.startswith("/") or "?" in path:
            raise ValueError(f"path must be a path such as '/' (no query), not {path!r}")
        domain = _domain(shop)
        host = f"admin.shopify.com/store/{domain.removesuffix('.myshopify.com')}"
        query = {
            "embedded": "1",
            "host": base64.urlsafe_b64encode(host.encode()).decode().rstrip("="),
            "id_token": self.session_token(domain, user_id=user_id),
            "locale": "en",
            "session": secrets.token_hex(32),
            "shop": domain,
            "timestamp": str(int(time.time())),
        }
        message = "&".join(f"{name}={value}" for name, value in sorted(query.items()))
        query["hmac"] = hmac.new(
            self._client_secret.encode(), message.encode(), hashlib.sha256
        ).hexdigest()
        return f"{path}?{urlencode(query)}"

    def limit_rate(self, per_second: int | None) -> None:
        """Rate-limit the token endpoint, as Shopify may: past ``per_second`` requests
        in a second of the clock (all shops together), answer 429 at once, with a
        ``Retry-After`` of the seconds left in that second (counted as ``rate_limited``).
        ``None`` lifts the limit; :meth:`reset` does too."""
        self._control("limit_rate", per_second=per_second)

    def totals(self) -> Counters:
        """What it saw of every shop together since it was started or reset."""
        return Counters(**self._control("totals")["counters"])

    def _control(self, action: str, **body: Any) -> dict[str, Any]:
        address = urlsplit(self.url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        try:
            connection.request(
                "POST",
                CONTROL + action,
                body=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
        finally:
            connection.close()
        if response.status != 200:
            raise ValueError(f"FakeShopify refused {action}: {answer.get('error', answer)}")
        return answer


def _domain(shop: str) -> str:
    if not isinstance(shop, str):
        raise TypeError(f"shop must be a str, not {type(shop).__name__}")
    return sanitize_shop(shop if "." in shop else shop + ".myshopify.com")
