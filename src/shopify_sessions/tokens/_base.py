"""Everything ``OfflineTokens`` and ``AsyncOfflineTokens`` decide without I/O: when a
token is due, what to send Shopify, and what its answer means.

The sync and async shells only load, lock, call and store in the order this gives.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shopify_app import TokenExchangeResult

from .._errors import (
    LockTimeoutError,
    ReauthorizationRequiredError,
    SessionStorageError,
    TokenExchangeError,
    TokenPersistenceError,
    TokenRefreshError,
)
from .._locks import check_timeout
from .._session import AssociatedUser, Session
from .._shop import offline_session_id, online_session_id, shop_domain
from .._storage import holds_tokens
from .._time import utc_now
from ..telemetry import (
    DISCARDED,
    DONE,
    DONE_ELSEWHERE,
    ERROR_CODE,
    FAILED,
    LOCK_WAITED,
    OPERATION,
    OUTCOME,
    REAUTHORIZATION_REQUIRED,
    RENEWAL_SPANS,
    SESSION_ID,
    SHOP,
    TRIGGER,
    Telemetry,
    check_telemetry,
    error_code,
)
from ._claims import session_token_problem, user_id_of
from ._convert import session_from_token, token_from_session

logger = logging.getLogger("shopify_sessions")

#: Say which sessions a renewal applies to: called with the session (re-read under the
#: lock) and the time now.
Due = Callable[[Session, datetime], bool]

#: shopifyapp's log codes after which only the merchant can help.
REAUTHORIZE = frozenset({"invalid_grant", "refresh_token_expired"})
#: OAuth errors of Shopify's token endpoint that mean the same for a legacy exchange.
LEGACY_REAUTHORIZE = frozenset({"invalid_grant", "invalid_subject_token", "invalid_token"})
#: Tries of the legacy exchange on 429 and 5xx answers (shopifyapp's refresh does 3 too).
LEGACY_ATTEMPTS = 3
TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
#: The code of a refused session token (``TokenExchangeError``).
INVALID_SESSION_TOKEN = "invalid_session_token"
#: The code of an exchange that Shopify answered with a 5xx (``shopifyapp`` says
#: ``exchange_error`` for any answer it does not know).
SERVER_ERROR = "server_error"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

#: The log's name of each renewal, and the operation and trigger telemetry gives it.
ACTIONS = {
    "refresh": ("refresh", "get"),
    "keep-warm": ("refresh", "keep_warm"),
    "legacy exchange": ("legacy_exchange", "migrate_legacy"),
    "token exchange": ("token_exchange", "request"),
    "online token exchange": ("token_exchange", "request"),
}


@dataclass(slots=True)
class RefreshReport:
    """What a fleet run (:meth:`OfflineTokens.refresh_expiring`,
    :meth:`OfflineTokens.migrate_all_legacy`) did, by shop domain.

    With ``concurrency`` above 1 the shops finish in no particular order.

    Attributes:
        refreshed: shops whose pair this run renewed (refreshed, or exchanged for
            ``migrate_all_legacy``).
        done_elsewhere: shops another worker had renewed already when this run took their
            lock (another copy of the run, or a request's ``get``): nothing was asked of
            Shopify; or, rarely, whose renewal found a newer pair stored and was dropped.
        skipped: shops named to ``migrate_all_legacy`` that have no offline session, or
            whose session is not a legacy one.
        reauthorization_required: shops whose merchant must open the app again.
        failed: shops that failed for another reason, with the error (typed, with its
            cause); they can be tried again on the next run.
        rate_limited: how many 429 answers the run met (each made every worker wait).
    """

    refreshed: list[str] = field(default_factory=list)
    reauthorization_required: list[str] = field(default_factory=list)
    failed: dict[str, SessionStorageError] = field(default_factory=dict)
    done_elsewhere: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rate_limited: int = 0

    @property
    def ok(self) -> bool:
        """Whether no shop failed or needs re-authorisation."""
        return not self.failed and not self.reauthorization_required

    @property
    def outcomes(self) -> dict[str, str]:
        """Each shop's outcome: ``refreshed``, ``done_elsewhere``, ``skipped``,
        ``reauthorization_required`` or ``failed``."""
        outcomes = dict.fromkeys(self.refreshed, "refreshed")
        outcomes.update(dict.fromkeys(self.done_elsewhere, "done_elsewhere"))
        outcomes.update(dict.fromkeys(self.skipped, "skipped"))
        outcomes.update(dict.fromkeys(self.reauthorization_required, "reauthorization_required"))
        outcomes.update(dict.fromkeys(self.failed, "failed"))
        return outcomes

    def _record(self, shop: str, outcome: str | SessionStorageError) -> None:
        """Add ``shop`` with its renewal's telemetry outcome, or the error that ended it
        (from any worker thread: one ``append`` or item assignment each, atomic)."""
        if isinstance(outcome, ReauthorizationRequiredError):
            self.reauthorization_required.append(shop)
        elif isinstance(outcome, SessionStorageError):
            self.failed[shop] = outcome
        elif outcome == DONE:
            self.refreshed.append(shop)
        else:
            self.done_elsewhere.append(shop)


class Attempt:
    """One renewal of a session's token (a refresh, a legacy or a token exchange), from
    asking for it to its outcome, which is reported once: one log record (never a token)
    and, through telemetry, a count, a duration, the lock wait and the span's attributes.
    """

    __slots__ = ("_action", "_domain", "_span", "_started", "_telemetry", "_waited", "outcome")

    def __init__(self, telemetry: Telemetry, action: str, domain: str, span: Any) -> None:
        self._telemetry, self._action, self._domain, self._span = telemetry, action, domain, span
        self._started = time.monotonic()
        self._waited: float | None = None
        self.outcome: str | None = None

    def locked(self) -> None:
        """The session lock is taken: the wait is over."""
        self._waited = time.monotonic() - self._started
        self._telemetry._record_lock_wait(ACTIONS[self._action][0], self._waited, acquired=True)
        if self._span is not None:
            self._span.set_attribute(LOCK_WAITED, self._waited)

    def failed(self, error: BaseException) -> None:
        """Report the error that ended the renewal, unless an outcome was reported."""
        if self.outcome is not None:
            return
        if isinstance(error, LockTimeoutError) and self._waited is None:
            waited = time.monotonic() - self._started
            self._telemetry._record_lock_wait(ACTIONS[self._action][0], waited, acquired=False)
        outcome = (
            REAUTHORIZATION_REQUIRED if isinstance(error, ReauthorizationRequiredError) else FAILED
        )
        self.finish(outcome, error_code(error), error)

    def finish(
        self, outcome: str, code: str | None = None, error: BaseException | None = None
    ) -> None:
        """Report the renewal's outcome: one of ``telemetry``'s outcome values."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        duration = time.monotonic() - self._started
        waited = duration if self._waited is None else self._waited
        level, text = _LOG_OUTCOMES[outcome]
        logger.log(
            level,
            "%s %s: %s (lock wait %.0f ms, %.0f ms in all)",
            self._action,
            self._domain,
            text.format(code=code),
            waited * 1000,
            duration * 1000,
            extra={
                "shop": self._domain,
                "action": self._action,
                "outcome": text.format(code=code),
                "lock_wait_ms": round(waited * 1000, 1),
                "duration_ms": round(duration * 1000, 1),
            },
        )
        operation, trigger = ACTIONS[self._action]
        attributes = {OPERATION: operation, TRIGGER: trigger, OUTCOME: outcome}
        if code is not None:
            attributes[ERROR_CODE] = code
        self._telemetry._count_renewal(operation, duration, attributes)
        if self._span is not None:
            self._span.set_attributes(attributes)
            if code is not None:
                self._telemetry._fail_span(self._span, error, code)


#: The level and the log's wording of each outcome.
_LOG_OUTCOMES = {
    DONE: (logging.INFO, "done"),
    DONE_ELSEWHERE: (logging.DEBUG, "done by another worker"),
    DISCARDED: (logging.WARNING, "discarded: the stored pair changed meanwhile"),
    REAUTHORIZATION_REQUIRED: (logging.WARNING, "reauthorization required ({code})"),
    FAILED: (logging.WARNING, "failed ({code})"),
}


def offline_id(shop: str) -> tuple[str, str]:
    """``(shop domain, offline session id)`` of ``my-shop`` or ``my-shop.myshopify.com``."""
    domain = shop_domain(shop)
    return domain, offline_session_id(domain)


def is_legacy(session: Session) -> bool:
    """Whether the session holds a non-expiring token that has not been migrated."""
    return session.expires is None and not session.refresh_token


class TokensBase:
    """The settings and decisions shared by the sync and async shells."""

    __slots__ = (
        "_app_config",
        "_delete_on_reauthorization",
        "_lock_timeout",
        "_skew",
        "_store_attempts",
        "_telemetry",
    )

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        skew: timedelta,
        lock_timeout: float,
        store_attempts: int,
        delete_on_reauthorization: bool,
        telemetry: Telemetry | None,
    ) -> None:
        for name, value in (("client_id", client_id), ("client_secret", client_secret)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty str")
        if not isinstance(skew, timedelta) or skew < timedelta(0):
            raise ValueError("skew must be a timedelta of zero or more")
        if (
            isinstance(store_attempts, bool)
            or not isinstance(store_attempts, int)
            or store_attempts < 1
        ):
            raise ValueError("store_attempts must be an int of 1 or more")
        self._app_config: Any = {
            "client_id": client_id,
            "client_secret": client_secret,
            "old_client_secret": None,
        }
        self._skew = skew
        self._lock_timeout = check_timeout(lock_timeout)
        self._store_attempts = store_attempts
        self._delete_on_reauthorization = bool(delete_on_reauthorization)
        self._telemetry = check_telemetry(telemetry)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self._app_config['client_id']!r}, skew={self._skew})"
        )

    @contextmanager
    def _attempt(self, action: str, domain: str, id: str) -> Iterator[Attempt]:
        """An :class:`Attempt` at renewing session ``id``, inside its span; an error that
        leaves the block before an outcome was reported is reported as the outcome."""
        operation, trigger = ACTIONS[action]
        attributes = {SHOP: domain, SESSION_ID: id, OPERATION: operation, TRIGGER: trigger}
        with self._telemetry._span(RENEWAL_SPANS[operation], attributes) as span:
            attempt = Attempt(self._telemetry, action, domain, span)
            try:
                yield attempt
            except BaseException as error:
                attempt.failed(error)
                raise

    @staticmethod
    def _offline_id(shop: str) -> tuple[str, str]:
        return offline_id(shop)

    def _is_stale(self, session: Session, now: datetime) -> bool:
        """Whether ``get`` must renew the session's access token first.

        It expires within ``skew``; or it has no expiry but a refresh token, which only a
        refresh answer that lost its expiry leaves behind (shopify-app-js #3400): one
        refresh repairs it. A session with neither is a legacy token, used as it is.
        """
        if session.expires is None:
            return bool(session.refresh_token)
        return session.expires - self._skew <= now

    @staticmethod
    def _may_serve_current(session: Session, error: Exception, now: datetime) -> bool:
        """Whether ``get`` may hand out the current token after a failed early refresh.

        Shopify or the network failed (or another worker held the lock too long), but the
        current access token has not expired yet: it still works, so the request goes on
        with it, and the next call tries the refresh again. A new pair that could not be
        stored is never hidden this way.
        """
        if isinstance(error, TokenPersistenceError):
            return False
        return session.expires is not None and session.expires > now

    @staticmethod
    def _is_legacy(session: Session, now: datetime) -> bool:
        return is_legacy(session)

    def _refresh_input(self, domain: str, session: Session, now: datetime) -> Any:
        """What ``shopifyapp.refresh_access_token`` is given to renew ``session``.

        ``shopifyapp`` refuses to refresh a token with more than 60 s left, whatever the
        app's ``skew``; the token is handed over without its ``expires`` so it goes ahead.

        Raises:
            ReauthorizationRequiredError: no refresh token, or it has expired.
        """
        if not session.refresh_token:
            raise ReauthorizationRequiredError(
                domain, "no_refresh_token", "the session has no refresh token to renew it with"
            )
        if session.refresh_token_expires is not None and session.refresh_token_expires <= now:
            raise ReauthorizationRequiredError(
                domain, "refresh_token_expired", "the stored refresh token has expired"
            )
        return replace(token_from_session(session), expires=None)

    def _refreshed_session(
        self, domain: str, session: Session, result: TokenExchangeResult, now: datetime
    ) -> Session:
        """The session to store after ``shopifyapp`` answered a refresh of ``session``.

        Raises:
            ReauthorizationRequiredError: Shopify said ``invalid_grant``, or the refresh
                token had expired.
            TokenRefreshError: any other failure (5xx after retries, network, credentials).
        """
        code, detail = result.log.code, result.log.detail
        if code in REAUTHORIZE:
            raise ReauthorizationRequiredError(domain, code, detail)
        if code != "success" or result.access_token is None:
            raise TokenRefreshError(domain, code, detail)
        renewed = session_from_token(result.access_token)
        return self._checked_pair(session, renewed, now)

    def _exchange_input(self, verified: Any) -> tuple[str, str]:
        """``(shop domain, offline session id)`` of a request ``shopifyapp`` verified.

        Raises:
            ValueError: not a verification that succeeded with an exchangeable session
                token (``verify_app_home_req``, ``verify_admin_ui_ext_req``,
                ``verify_pos_ui_ext_req`` give one).
            TokenExchangeError: the session token is not what Shopify says to accept
                (``session_token_problem``): ``response`` is the verification's answer
                to an invalid token.
        """
        id_token = getattr(verified, "id_token", None)
        if (
            getattr(verified, "ok", False) is not True
            or not getattr(verified, "shop", None)
            or id_token is None
            or not getattr(id_token, "exchangeable", False)
        ):
            raise ValueError(
                "get_or_exchange takes a verification of shopifyapp that succeeded with an "
                "exchangeable session token (verify_app_home_req, verify_admin_ui_ext_req, "
                "verify_pos_ui_ext_req)"
            )
        problem = session_token_problem(verified, self._app_config["client_id"], time.time())
        if problem is not None:
            raise self._refused_token(verified, problem)
        return self._offline_id(verified.shop)

    def _online_exchange_input(self, verified: Any) -> tuple[str, str, int]:
        """``(shop domain, online session id, user id)`` of a request ``shopifyapp``
        verified: the staff user is the session token's ``sub``.

        Raises:
            ValueError: As for ``_exchange_input``.
            TokenExchangeError: As for ``_exchange_input``, or the token names no user.
        """
        domain, _ = self._exchange_input(verified)
        user_id = user_id_of(verified)
        if user_id is None:
            raise self._refused_token(verified, "sub is not a staff user's id")
        return domain, online_session_id(domain, user_id), user_id

    @staticmethod
    def _refused_token(verified: Any, problem: str) -> TokenExchangeError:
        """The error for a session token refused before any exchange: answered as
        ``shopifyapp`` answers an invalid token (App Bridge fetches a new one)."""
        logger.warning("session token refused: %s", problem)
        return TokenExchangeError(
            _domain_or_nothing(getattr(verified, "shop", None)),
            INVALID_SESSION_TOKEN,
            problem,
            response=getattr(verified, "invalid_token_response", None),
        )

    def _exchanged_session(self, domain: str, result: TokenExchangeResult) -> Session:
        """The session to store after ``shopifyapp`` exchanged a request's session token.

        Raises:
            TokenExchangeError: Shopify refused the exchange, or could not be reached;
                ``response`` is what ``shopifyapp`` suggests answering the request with.
        """
        session = session_from_token(self._exchanged_token(domain, result))
        if session.shop != domain or session.is_online:
            raise TokenExchangeError(
                domain, "unexpected_token", "the exchange answered a token of another kind"
            )
        return session

    def _exchanged_online_session(
        self, domain: str, user_id: int, result: TokenExchangeResult, now: datetime
    ) -> Session:
        """The staff user's online session after ``shopifyapp`` exchanged a request's
        session token for an online access token.

        As Node's ``Session`` keeps it: ``expires`` is ``now + expires_in``, and
        ``online_access_info`` holds ``expires_in``, ``associated_user_scope`` and the
        ``associated_user`` exactly as Shopify answered them (``shopifyapp`` fills the
        user's missing fields with ``""`` and ``False``, and keeps no ``expires_in``:
        they are read from its log of Shopify's answer, which has the tokens redacted).

        Raises:
            TokenExchangeError: As for ``_exchanged_session``, or the token is not
                an online token of this shop and user.
        """
        session = session_from_token(self._exchanged_token(domain, result))
        info = session.online_access_info
        if (
            session.shop != domain
            or not session.is_online
            or info is None
            or info.associated_user.id != user_id
        ):
            raise TokenExchangeError(
                domain, "unexpected_token", "the exchange answered another user's token"
            )
        answer = _answered(result)
        user = answer.get("associated_user")
        if isinstance(user, dict):
            fields = {name: _typed(user.get(name), kind) for name, kind in _USER_FIELDS.items()}
            info.associated_user = AssociatedUser(id=user_id, **fields)
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, int) and not isinstance(expires_in, bool) and expires_in > 0:
            info.expires_in = expires_in
            session.expires = now + timedelta(seconds=expires_in)
        scope = answer.get("associated_user_scope")
        if isinstance(scope, str):
            info.associated_user_scope = scope
        if session.expires is None or session.expires <= now:
            # Never stored as a token that does not expire: the next request exchanges.
            logger.warning("online token answer for %s had no future expiry", domain)
            session.expires = now
        return session

    @staticmethod
    def _exchanged_token(domain: str, result: TokenExchangeResult) -> Any:
        """The access token of a token exchange ``shopifyapp`` made.

        Raises:
            TokenExchangeError: Shopify refused the exchange, failed (``server_error``:
                it answered a 5xx; ``network_error``), or could not be reached;
                ``response`` is what ``shopifyapp`` suggests answering the request with.
        """
        if result.ok and result.access_token is not None:
            return result.access_token
        code, detail = result.log.code, result.log.detail
        if code == "exchange_error" and _answered_status(result) >= 500:
            code = SERVER_ERROR
        raise TokenExchangeError(domain, code, detail, response=result.response)

    def _exchanged(
        self, domain: str, user_id: int | None, result: TokenExchangeResult, now: datetime
    ) -> Session:
        """The session to store after an exchange of a request's session token: the
        shop's offline one, or the online one of the staff user ``user_id``."""
        if user_id is None:
            return self._exchanged_session(domain, result)
        return self._exchanged_online_session(domain, user_id, result, now)

    def _is_exchange_needless(self, stored: Session, user_id: int | None, now: datetime) -> bool:
        """Whether the session found under the lock makes the exchange needless: another
        worker stored a valid one meanwhile."""
        if user_id is None:
            return not self._is_stale(stored, now)
        return self._is_fresh_online(stored, now)

    def _is_fresh_online(self, session: Session, now: datetime) -> bool:
        """Whether an online session's access token is valid for ``skew`` more: an online
        token cannot be refreshed, only exchanged again from a new session token."""
        return (
            session.is_online
            and bool(session.access_token)
            and session.expires is not None
            and session.expires - self._skew > now
        )

    def _legacy_request(self, domain: str, session: Session) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body that exchange a legacy token for an expiring pair."""
        body = {
            "client_id": self._app_config["client_id"],
            "client_secret": self._app_config["client_secret"],
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": session.access_token,
            "subject_token_type": TOKEN_TYPE,
            "requested_token_type": TOKEN_TYPE,
            "expiring": 1,
        }
        return f"https://{domain.rstrip('/')}/admin/oauth/access_token", body

    @staticmethod
    def _should_retry_legacy(status: int, attempt: int) -> float | None:
        """Seconds to wait before trying the legacy exchange again, or ``None``."""
        if (status == 429 or 500 <= status <= 504) and attempt + 1 < LEGACY_ATTEMPTS:
            return 0.25 * (1 << attempt) * (1 + random.random())
        return None

    def _migrated_session(
        self, domain: str, session: Session, status: int, answer: Any, now: datetime
    ) -> Session:
        """The session to store after Shopify answered a legacy exchange.

        Raises:
            ReauthorizationRequiredError: Shopify refused the legacy token.
            TokenRefreshError: any other failure.
        """
        if not isinstance(answer, dict):
            answer = {}
        if status != 200:
            error = str(answer.get("error") or f"http_{status}")
            detail = str(answer.get("error_description") or f"Shopify answered HTTP {status}")
            if error in LEGACY_REAUTHORIZE:
                raise ReauthorizationRequiredError(domain, error, detail)
            raise TokenRefreshError(domain, error, detail)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenRefreshError(domain, "invalid_answer", "the answer has no access_token")
        try:
            expires_in = _seconds(answer.get("expires_in"))
            refresh_expires_in = _seconds(answer.get("refresh_token_expires_in"))
        except ValueError as error:
            raise TokenRefreshError(domain, "invalid_answer", str(error)) from None
        renewed = session.copy()
        renewed.access_token = token
        renewed.scope = str(answer.get("scope") or session.scope or "")
        renewed.expires = None if expires_in is None else now + expires_in
        renewed.refresh_token = answer.get("refresh_token") or None
        renewed.refresh_token_expires = (
            None if refresh_expires_in is None else now + refresh_expires_in
        )
        return self._checked_pair(session, renewed, now)

    @staticmethod
    def _checked_pair(old: Session, new: Session, now: datetime) -> Session:
        """``new`` made safe to store in place of ``old``.

        Shopify's answer without ``expires_in`` (shopify-app-js #3400) must not be stored
        as a token that never expires, which nothing would refresh again: it is stored as
        expiring now, so the next ``get`` refreshes it. An answer without a refresh token
        keeps the old one (nothing replaced it, so Shopify still honours it), and a refresh
        token expiry in the past (an answer without ``refresh_token_expires_in``) is stored
        as unknown rather than as expired. The old session's ``state`` and extra
        attributes are kept.
        """
        new.id, new.shop, new.state = old.id, old.shop, old.state
        new.extra = dict(old.extra)
        if new.expires is None or new.expires <= now:
            logger.warning(
                "token answer for %s had no future expiry; stored as expiring now", old.shop
            )
            new.expires = now
        if not new.refresh_token:
            new.refresh_token = old.refresh_token
            new.refresh_token_expires = old.refresh_token_expires
        elif new.refresh_token_expires is not None and new.refresh_token_expires <= now:
            new.refresh_token_expires = None
        return new

    @staticmethod
    def _holds_same_pair(stored: Session, session: Session) -> bool:
        """Whether ``stored`` still holds the tokens of ``session``."""
        return holds_tokens(stored.access_token, stored.refresh_token, session)

    @staticmethod
    def _store_pause(attempt: int) -> float:
        """Seconds before storing a renewed pair again: 0.1 s doubling, at most 2 s."""
        return min(0.1 * (1 << attempt), 2.0) * (0.5 + random.random())


def now() -> datetime:
    """The time decisions are made against (aware UTC)."""
    return utc_now()


#: The ``associated_user`` fields of Shopify's answer that an ``AssociatedUser`` holds
#: (besides ``id``), and the type of each.
_USER_FIELDS: dict[str, type] = {
    "first_name": str,
    "last_name": str,
    "email": str,
    "email_verified": bool,
    "account_owner": bool,
    "locale": str,
    "collaborator": bool,
}


def _answered(result: TokenExchangeResult) -> dict[str, Any]:
    """Shopify's JSON answer to a successful exchange, from ``shopifyapp``'s log of it
    (credentials redacted), or ``{}``."""
    for log in reversed(result.http_logs or []):
        if getattr(log, "code", None) == "success":
            try:
                answer = json.loads(getattr(log.res, "body", "") or "")
            except (TypeError, ValueError):
                return {}
            return answer if isinstance(answer, dict) else {}
    return {}


def _answered_status(result: TokenExchangeResult) -> int:
    """The HTTP status of Shopify's last answer to an exchange (0: none)."""
    logs = result.http_logs or []
    status = getattr(getattr(logs[-1], "res", None), "status", 0) if logs else 0
    return status if isinstance(status, int) else 0


def _typed(value: object, kind: type) -> Any:
    """``value`` if Shopify answered it with the field's type, else ``None`` (unknown)."""
    return value if type(value) is kind else None


def _domain_or_nothing(shop: object) -> str:
    """The domain of a shop name that ``shopifyapp`` derived from a request, or ``""``
    when it is not a shop's (an error never repeats a hostile value)."""
    try:
        return shop_domain(shop)  # type: ignore[arg-type]
    except ValueError:
        return ""


def _seconds(value: object) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"not a number of seconds: {value!r}")
    return timedelta(seconds=value)
