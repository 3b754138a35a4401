"""The asyncio token lifecycle: the one hand-written shell.

``_sync.py`` is generated from this file by ``scripts/unasync.py`` (CI checks that it
is): edit here, then run the script.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from shopify_app import ResultWithExchangeableIdToken
from shopify_app.exchange.refresh_token import refresh_access_token_async
from shopify_app.exchange.token_exchange import token_exchange_async

from .._errors import (
    LockTimeoutError,
    ReauthorizationRequiredError,
    SessionStorageError,
    TokenPersistenceError,
    TokenRefreshError,
)
from .._locks import DEFAULT_LOCK_TIMEOUT
from .._session import Session
from .._storage import (
    AsyncLockingSessionStorage,
    check_batch_size,
    check_storage_kind,
    is_refresh_due,
)
from .._wrappers import is_locking_storage, wrapper_advice
from ..telemetry import DISCARDED, DONE, DONE_ELSEWHERE, Telemetry
from ._base import HEADERS, Due, RefreshReport, TokensBase, is_legacy, logger, now, offline_id
from ._fleet import (
    AsyncRecorder,
    Gate,
    Run,
    check_concurrency,
    for_each_async,
)


class AsyncOfflineTokens(TokensBase):
    """Shops' offline access tokens, always valid, renewed once however many workers ask.

    The asyncio twin of :class:`OfflineTokens`: the same behaviour, awaited.

    Shopify's expiring offline tokens last an hour; their refresh token lasts 90 days and
    is replaced on every use. :meth:`get` hands out a token valid for at least ``skew``,
    refreshing it first when needed, with one refresh per session at a time across
    threads, tasks, processes and hosts (the storage's ``lock_session``): a worker that
    waited reads the row again and uses the pair that was just stored. The new pair is
    stored at once in one atomic write, retried if the database fails.

    Args:
        storage: a storage of this package (memory or SQL) of the same kind, sync or
            asyncio; one of the other kind is refused with a ``TypeError``.
        client_id: the app's client id.
        client_secret: the app's client secret.
        http_client: the ``httpx`` client for Shopify (timeouts, proxies, a transport);
            ``shopifyapp`` makes a client per call without one.
        skew: how long a handed-out access token must still be valid.
        lock_timeout: seconds to wait for another worker's refresh of the same session
            before :class:`~shopify_sessions.LockTimeoutError`.
        store_attempts: how many times a renewed pair is written before giving up.
        delete_on_reauthorization: delete the session when Shopify says the merchant must
            re-authorise (``get`` then returns ``None``); by default the row is kept as it
            was, and each later ``get`` asks Shopify again.
        telemetry: where to report metrics and spans (see
            :class:`~shopify_sessions.telemetry.Telemetry`); OpenTelemetry's global
            providers by default, when ``opentelemetry-api`` is installed.
    """

    __slots__ = ("_http_client", "_storage")

    def __init__(
        self,
        storage: AsyncLockingSessionStorage,
        *,
        client_id: str,
        client_secret: str,
        http_client: httpx.AsyncClient | None = None,
        skew: timedelta = timedelta(minutes=5),
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        store_attempts: int = 6,
        delete_on_reauthorization: bool = False,
        telemetry: Telemetry | None = None,
    ) -> None:
        check_storage_kind(storage, AsyncOfflineTokens, is_async=True)
        if not is_locking_storage(storage, is_async=True):
            raise TypeError(
                "storage must be a locking storage (lock_session, replace_session, "
                f"sessions_due_for_refresh), not {storage!r}"
                + wrapper_advice(storage, is_async=True)
            )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(f"http_client must be an httpx.AsyncClient, not {http_client!r}")
        super().__init__(
            client_id,
            client_secret,
            skew,
            lock_timeout,
            store_attempts,
            delete_on_reauthorization,
            telemetry,
        )
        self._storage = storage
        self._http_client = http_client

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The ``httpx`` client that calls Shopify (``None``: ``shopifyapp`` makes its own);
        the app's own Admin API calls can share it."""
        return self._http_client

    async def get(self, shop: str) -> Session | None:
        """The shop's offline session, with an access token valid for at least ``skew``.

        Refreshed first when needed. If that early refresh fails for a passing reason
        (:class:`~shopify_sessions.TokenRefreshError` or
        :class:`~shopify_sessions.LockTimeoutError`) while the current token has not
        expired yet, the current session is returned and a warning logged: the next call
        tries again. A legacy session (no expiry, no refresh token) is returned as it is;
        see :meth:`migrate_legacy`.

        Args:
            shop: ``my-shop.myshopify.com``, or ``my-shop`` as ``shopifyapp`` names shops.

        Returns:
            The session, or ``None`` when the shop has no offline session.

        Raises:
            ReauthorizationRequiredError: the merchant must open the app again.
            TokenRefreshError: Shopify or the network failed and the token has expired;
                the stored pair is intact.
            TokenPersistenceError: the renewed pair could not be stored.
            LockTimeoutError: another worker held the session's lock too long, and the
                token has expired.
            SessionStorageError: the storage failed (typed, with its cause).
        """
        domain, id = self._offline_id(shop)
        session = await self._storage.load_session(id)
        if session is None or not self._is_stale(session, now()):
            return session
        try:
            return await self._renew(domain, id, self._is_stale, "refresh", self._refresh)
        except (TokenRefreshError, LockTimeoutError) as error:
            if not self._may_serve_current(session, error, now()):
                raise
            logger.warning("%s: serving the current token until it expires: %s", domain, error)
            return session

    async def get_or_exchange(self, verified: ResultWithExchangeableIdToken) -> Session:
        """The offline session of the shop of a request ``shopifyapp`` verified: the stored
        one, valid for ``skew`` (as :meth:`get`), or, when there is none or its merchant
        must re-authorise, a new one from Shopify's token exchange of the request's session
        token, stored.

        This is what an App Home page or an admin extension needs on every request. The
        exchange runs under the session's lock, so concurrent first requests of a shop
        make one exchange; a worker that waited uses the session just stored.

        Args:
            verified: what ``ShopifyApp.verify_app_home_req`` (or
                ``verify_admin_ui_ext_req``, ``verify_pos_ui_ext_req``) returned, when its
                ``ok`` is true.

        Raises:
            ValueError: ``verified`` is not a successful verification with an
                exchangeable session token.
            TokenExchangeError: the session token is not one Shopify says to accept
                (``dest`` not a shop's URL, ``iss`` on another shop, no ``exp``...), or
                Shopify refused the exchange or failed (``code`` ``network_error`` or
                ``server_error``); its ``response`` is the one ``shopifyapp`` suggests
                answering the request with.
            ReauthorizationRequiredError: the session was deleted (the app uninstalled)
                while the exchange was in flight.
            TokenRefreshError: As for :meth:`get`.
            TokenPersistenceError: As for :meth:`get`.
            LockTimeoutError: As for :meth:`get`.
            SessionStorageError: As for :meth:`get`.
        """
        domain, id = self._exchange_input(verified)
        try:
            session = await self.get(domain)
        except ReauthorizationRequiredError:
            session = None
        if session is not None:
            return session
        return await self._exchange_id_token(verified, domain, id, None)

    async def get_or_exchange_online(self, verified: ResultWithExchangeableIdToken) -> Session:
        """The staff user's online session for a request ``shopifyapp`` verified: the
        stored one (id ``{shop}_{user id}``, the user being the session token's ``sub``)
        while it is valid for ``skew``, else a new one from Shopify's token exchange of
        the request's session token for an online access token, stored.

        An online token acts as the staff user, with the user's permissions, and
        cannot be refreshed: when it expires (Shopify: after a day, or when the user logs
        out), the next request exchanges its session token again. Its
        ``online_access_info`` holds ``expires_in``, ``associated_user_scope`` and
        ``associated_user`` as Node's ``Session`` does. The exchange runs under the
        session's lock, as for :meth:`get_or_exchange`. The shop's offline session is not
        touched: an app that needs it too (for background work) calls
        :meth:`get_or_exchange` first.

        Args:
            verified: As for :meth:`get_or_exchange`.

        Raises:
            ValueError: As for :meth:`get_or_exchange`.
            TokenExchangeError: As for :meth:`get_or_exchange`; also a session token that
                names no staff user (``sub``).
            ReauthorizationRequiredError: the session was deleted (the app uninstalled)
                while the exchange was in flight.
            TokenPersistenceError: As for :meth:`get`.
            LockTimeoutError: another worker held the session's lock too long.
            SessionStorageError: As for :meth:`get`.
        """
        domain, id, user_id = self._online_exchange_input(verified)
        session = await self._storage.load_session(id)
        if session is not None and self._is_fresh_online(session, now()):
            return session
        return await self._exchange_id_token(verified, domain, id, user_id)

    async def migrate_legacy(self, shop: str) -> Session | None:
        """Exchange the shop's non-expiring offline token for an expiring pair, once.

        However many workers call it at once, one exchange is made; a shop whose session
        already has a refresh token (or an expiry) is left alone and returned as it is.
        After the exchange the legacy token no longer works: the returned session holds
        the new pair.

        Returns:
            The session, or ``None`` when the shop has no offline session.

        Raises:
            ReauthorizationRequiredError: Shopify refused the legacy token.
            TokenRefreshError: As for :meth:`get`.
            TokenPersistenceError: As for :meth:`get`.
            LockTimeoutError: As for :meth:`get`.
            SessionStorageError: As for :meth:`get`.
        """
        domain, id = self._offline_id(shop)
        session = await self._storage.load_session(id)
        if session is None or not self._is_legacy(session, now()):
            return session
        return await self._renew(domain, id, self._is_legacy, "legacy exchange", self._exchange)

    async def refresh_expiring(
        self,
        *,
        within: timedelta = timedelta(days=7),
        batch_size: int = 100,
        progress: Callable[[int], object] | None = None,
        concurrency: int = 8,
    ) -> RefreshReport:
        """Keep idle shops warm: refresh every offline session whose refresh token
        expires within ``within``, before it lapses and the merchant must re-authorise.

        Run it from cron (daily, with ``within`` longer than the interval). Sessions are
        read ``batch_size`` at a time, and refreshed ``concurrency`` at a time, each under
        its lock: however many copies of the run (or requests) go at once, a shop is
        refreshed once, and a shop another worker refreshed meanwhile is listed in
        ``done_elsewhere``. Memory holds one batch and the shops in flight. One shop's
        failure is recorded and the others go on.

        Polite to Shopify: a 429 answer closes a gate every task of the run waits at
        for its ``Retry-After``; a request that could not be sent (connection refused,
        connect timeout) is tried again after a growing pause. Either is tried at most
        6 times in all.

        Interrupted (cancelled, or an error of ``progress``), it starts no new shop and
        lets the shops in flight finish storing their pair; run it again to go on.

        Args:
            within: refresh the sessions whose refresh token expires within this.
            batch_size: sessions read at a time.
            progress: called with 1 after each shop (from the task that did it).
            concurrency: shops renewed at a time, 1 to 256 (8 by default).
        """
        if not isinstance(within, timedelta) or within < timedelta(0):
            raise ValueError("within must be a timedelta of zero or more")
        concurrency = check_concurrency(concurrency)
        before = now() + within

        def due(session: Session, at: Any) -> bool:
            return is_refresh_due(session, before)

        report = RefreshReport()
        async with self._fleet_run() as run:

            async def one(session: Session) -> None:
                gate = run.shop_gate()
                await self._pass(gate)
                try:
                    _, outcome = await self._renewal(
                        session.shop,
                        session.id,
                        due,
                        "keep-warm",
                        lambda domain, stored: self._refresh_politely(domain, stored, run, gate),
                    )
                except SessionStorageError as error:
                    report._record(session.shop, error)
                else:
                    report._record(session.shop, outcome)
                if progress is not None:
                    progress(1)

            try:
                await for_each_async(
                    self._storage.sessions_due_for_refresh(before, batch_size=batch_size),
                    one,
                    concurrency,
                )
            finally:
                report.rate_limited = run.rate_limited
        return report

    async def migrate_all_legacy(
        self,
        shops: Iterable[str] | None = None,
        *,
        batch_size: int = 500,
        progress: Callable[[int], object] | None = None,
        concurrency: int = 8,
    ) -> RefreshReport:
        """:meth:`migrate_legacy` for many shops: the given ones, or every legacy
        (non-expiring) offline session of the storage.

        As :meth:`refresh_expiring`: ``concurrency`` shops at a time, each exchanged once
        under its lock however many copies run (a shop another worker migrated is listed
        in ``done_elsewhere``), memory bounded by ``batch_size``, the same backoff on 429s
        and unsent requests, safe to interrupt and run again. Named shops that have no
        offline session, or not a legacy one, are listed in ``skipped``.

        Args:
            shops: shop domains (or ``my-shop``); by default the storage is walked
                (its ``legacy_sessions``, or ``sessions``, which the SQL, Redis and
                DynamoDB storages and the memory one have).
            batch_size: sessions read (or shops taken) at a time.
            progress: called with 1 after each shop.
            concurrency: shops exchanged at a time, 1 to 256 (8 by default).

        Raises:
            TypeError: no ``shops`` and a storage that cannot be walked.
        """
        concurrency = check_concurrency(concurrency)
        check_batch_size(batch_size)
        if shops is None:
            batches = self._legacy_batches(batch_size)
        elif isinstance(shops, str):
            raise TypeError("shops must be an iterable of shop names, not a str")
        else:
            batches = self._named_batches(shops, batch_size)
        report = RefreshReport()
        async with self._fleet_run() as run:

            async def one(shop: tuple[str, str, bool]) -> None:
                domain, id, checked = shop
                if not checked:
                    stored = await self._storage.load_session(id)
                    if stored is None or not self._is_legacy(stored, now()):
                        report.skipped.append(domain)
                        if progress is not None:
                            progress(1)
                        return
                gate = run.shop_gate()
                await self._pass(gate)
                try:
                    _, outcome = await self._renewal(
                        domain,
                        id,
                        self._is_legacy,
                        "legacy exchange",
                        lambda name, stored: self._exchange_politely(name, stored, run, gate),
                    )
                except SessionStorageError as error:
                    report._record(domain, error)
                else:
                    report._record(domain, outcome)
                if progress is not None:
                    progress(1)

            try:
                await for_each_async(batches, one, concurrency)
            finally:
                report.rate_limited = run.rate_limited
        return report

    async def _legacy_batches(self, batch_size: int) -> AsyncIterator[list[tuple[str, str, bool]]]:
        """The storage's legacy offline sessions, a batch at a time, as
        ``(domain, id, True)``: known legacy when read."""
        walk = getattr(self._storage, "legacy_sessions", None) or getattr(
            self._storage, "sessions", None
        )
        if walk is None:
            raise TypeError(
                f"{type(self._storage).__name__} cannot list its sessions: name the shops"
            )
        async for batch in walk(batch_size=batch_size):
            legacy = [
                (session.shop, session.id, True)
                for session in batch
                if not session.is_online and is_legacy(session)
            ]
            if legacy:
                yield legacy

    @staticmethod
    async def _named_batches(
        shops: Iterable[str], batch_size: int
    ) -> AsyncIterator[list[tuple[str, str, bool]]]:
        """The named shops, ``batch_size`` at a time, as ``(domain, id, False)``: not
        read yet. A name that is no shop's raises ``ValueError`` before any is migrated
        in its batch."""
        iterator = iter(shops)
        while batch := list(itertools.islice(iterator, batch_size)):
            yield [(*offline_id(shop), False) for shop in batch]

    @asynccontextmanager
    async def _fleet_run(self) -> AsyncIterator[Run]:
        """A fleet run's shared state, on the app's HTTP client, or on one client for the
        whole run (its connections kept alive from shop to shop)."""
        if self._http_client is not None:
            yield self._new_run(self._http_client)
            return
        async with httpx.AsyncClient(timeout=30.0) as client:
            yield self._new_run(client)

    @staticmethod
    def _new_run(client: httpx.AsyncClient) -> Run:
        return Run(client)

    @staticmethod
    async def _pass(gate: Gate) -> None:
        """Wait for a slot of the run's backoff gate (another, if a 429 closed the gate
        while this waited)."""
        while True:
            closures = gate.closures
            pause = gate.admit()
            if pause > 0:
                await asyncio.sleep(pause)
            if gate.closures == closures:
                return

    async def _refresh_politely(
        self, domain: str, session: Session, run: Run, gate: Gate
    ) -> Session:
        """:meth:`_refresh` in a fleet run: through the gate, tried again after a 429 or
        an unsent request."""
        token = self._refresh_input(domain, session, now())
        attempt = 0
        while True:
            recorder = AsyncRecorder(run.client)
            result = await refresh_access_token_async(
                token,
                self._app_config,
                recorder,  # type: ignore[arg-type]
            )
            pause = None
            if result.log.code != "success":
                pause = run.retry_pause(
                    domain, gate, attempt, recorder.status, recorder.headers, recorder.error
                )
            if pause is None:
                if recorder.status == 429:
                    raise TokenRefreshError(
                        domain, "rate_limited", f"Shopify answered 429 {attempt + 1} times"
                    )
                if recorder.error is not None:  # shopifyapp keeps neither its type nor it
                    raise TokenRefreshError(
                        domain, "network_error", type(recorder.error).__name__
                    ) from recorder.error
                return self._refreshed_session(domain, session, result, now())
            await asyncio.sleep(pause)
            await self._pass(gate)
            attempt += 1

    async def _exchange_politely(
        self, domain: str, session: Session, run: Run, gate: Gate
    ) -> Session:
        """:meth:`_exchange` in a fleet run: through the gate, tried again after a 429 or
        an unsent request, and after a 5xx as :meth:`_exchange` does."""
        url, body = self._legacy_request(domain, session)
        attempt = 0
        while True:
            try:
                response = await run.client.post(url, json=body, headers=HEADERS)
            except httpx.HTTPError as error:
                pause = run.retry_pause(domain, gate, attempt, None, None, error)
                if pause is None:
                    raise TokenRefreshError(
                        domain, "network_error", type(error).__name__
                    ) from error
            else:
                status = response.status_code
                pause = run.retry_pause(domain, gate, attempt, status, response.headers, None)
                if pause is None and status != 429:
                    pause = self._should_retry_legacy(status, attempt)
                if pause is None:
                    if status == 429:
                        raise TokenRefreshError(
                            domain, "rate_limited", f"Shopify answered 429 {attempt + 1} times"
                        )
                    return self._migrated_session(domain, session, status, _json(response), now())
            await asyncio.sleep(pause)
            await self._pass(gate)
            attempt += 1

    async def _exchange_id_token(
        self,
        verified: ResultWithExchangeableIdToken,
        domain: str,
        id: str,
        user_id: int | None,
    ) -> Session:
        """Exchange the request's session token for the session ``id`` under its lock: an
        offline token, or the online token of the staff user ``user_id``."""
        action = "token exchange" if user_id is None else "online token exchange"
        with self._attempt(action, domain, id) as attempt:
            lock = self._storage.lock_session(id, timeout=self._lock_timeout)
            async with lock:
                attempt.locked()
                stored = await self._storage.load_session(id)
                if stored is not None and self._is_exchange_needless(stored, user_id, now()):
                    attempt.finish(DONE_ELSEWHERE)
                    return stored
                result = await token_exchange_async(
                    "offline" if user_id is None else "online",
                    self._app_config,
                    id_token=verified.id_token,
                    invalid_token_response=verified.invalid_token_response,
                    http_client=self._http_client,
                )
                session = self._exchanged(domain, user_id, result, now())
                if stored is None:
                    await self._storage.store_session(session)
                elif not await self._store(domain, session, stored):
                    # A worker outside the lock stored a pair meanwhile, or the session
                    # was deleted (an uninstall): never brought back.
                    attempt.finish(DISCARDED)
                    current = await self._storage.load_session(id)
                    if current is None:
                        raise ReauthorizationRequiredError(
                            domain, "session_deleted", "the session was deleted meanwhile"
                        )
                    return current
                attempt.finish(DONE)
                return session

    async def _renew(
        self,
        domain: str,
        id: str,
        due: Due,
        action: str,
        call: Callable[[str, Session], Awaitable[Session]],
    ) -> Session | None:
        session, _ = await self._renewal(domain, id, due, action, call)
        return session

    async def _renewal(
        self,
        domain: str,
        id: str,
        due: Due,
        action: str,
        call: Callable[[str, Session], Awaitable[Session]],
    ) -> tuple[Session | None, str]:
        """Renew session ``id`` under its lock if it is still ``due`` when read there:
        the session stored after, and the outcome (``DONE``, ``DONE_ELSEWHERE`` or
        ``DISCARDED``)."""
        with self._attempt(action, domain, id) as attempt:
            lock = self._storage.lock_session(id, timeout=self._lock_timeout)
            async with lock:
                attempt.locked()
                session = await self._storage.load_session(id)
                if session is None or not due(session, now()):
                    attempt.finish(DONE_ELSEWHERE)
                    return session, DONE_ELSEWHERE
                try:
                    renewed = await call(domain, session)
                except ReauthorizationRequiredError as error:
                    attempt.failed(error)
                    if self._delete_on_reauthorization:
                        await self._delete_unless_renewed(session)
                    raise
                if await self._store(domain, renewed, session):
                    attempt.finish(DONE)
                    return renewed, DONE
                # The row changed while Shopify answered: this worker outlived its lock, or
                # the session was deleted (an uninstall). Whatever is stored now wins.
                attempt.finish(DISCARDED)
                return await self._storage.load_session(id), DISCARDED

    async def _refresh(self, domain: str, session: Session) -> Session:
        token = self._refresh_input(domain, session, now())
        result = await refresh_access_token_async(token, self._app_config, self._http_client)
        return self._refreshed_session(domain, session, result, now())

    async def _exchange(self, domain: str, session: Session) -> Session:
        url, body = self._legacy_request(domain, session)
        attempt = 0
        while True:
            status, answer = await self._post(domain, url, body)
            pause = self._should_retry_legacy(status, attempt)
            if pause is None:
                return self._migrated_session(domain, session, status, answer, now())
            await asyncio.sleep(pause)
            attempt += 1

    async def _post(self, domain: str, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            if self._http_client is not None:
                response = await self._http_client.post(url, json=body, headers=HEADERS)
            else:
                async with httpx.AsyncClient(timeout=30.0) as client:
                    response = await client.post(url, json=body, headers=HEADERS)
        except httpx.HTTPError as error:
            raise TokenRefreshError(domain, "network_error", type(error).__name__) from error
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def _store(self, domain: str, session: Session, previous: Session) -> bool:
        """Store the renewed pair over ``previous`` (never over another pair), retried: after
        Shopify answered, it exists nowhere else. ``False`` when the row changed meanwhile."""
        attempt = 0
        while True:
            try:
                return await self._storage.replace_session(session, previous=previous)
            except SessionStorageError as error:
                attempt += 1
                if attempt == self._store_attempts:
                    raise TokenPersistenceError(
                        domain,
                        "store_failed",
                        f"the renewed pair could not be stored after {attempt} tries; "
                        "the old pair is still in the table",
                    ) from error
                logger.warning(
                    "storing the renewed pair of %s failed (%s); trying again", domain, error
                )
                await asyncio.sleep(self._store_pause(attempt - 1))

    async def _delete_unless_renewed(self, session: Session) -> None:
        """Delete the session Shopify refused, unless another worker renewed it meanwhile."""
        stored = await self._storage.load_session(session.id)
        if stored is not None and self._holds_same_pair(stored, session):
            await self._storage.delete_session(session.id)


def _json(response: httpx.Response) -> Any:
    """The answer's JSON, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
