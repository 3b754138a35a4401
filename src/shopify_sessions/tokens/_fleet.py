"""Fleet runs (``refresh_expiring``, ``migrate_all_legacy``): many shops at a time, in
bounded memory, polite to Shopify.

- :func:`for_each_async` and :func:`for_each` run one shop's work per task or thread,
  ``concurrency`` at a time, reading the next page of sessions only when a slot is free:
  memory holds one page and the shops in flight, however many shops there are.
- :class:`Gate` is the backoff every worker of a run passes before it calls Shopify: a 429
  closes it for its ``Retry-After``, so the whole run slows down, not one task, and
  spaces the calls after it at the rate Shopify took.
- :class:`Run` decides, without I/O, whether a failed call is tried again, and after how
  long.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import itertools
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

logger = logging.getLogger("shopify_sessions")

T = TypeVar("T")

#: Shops renewed at once by a fleet run unless told otherwise (the methods' default, written
#: out in their signatures): at Shopify's ~100 ms a call, about 80 shops a second.
DEFAULT_CONCURRENCY = 8
#: The most a fleet run takes: more buys nothing on a pool of connections, and a
#: thread each is the cost in the sync form.
MAX_CONCURRENCY = 256
#: Calls of one shop's renewal, the first included, through 429s and unsent requests.
FLEET_ATTEMPTS = 6
#: Seconds waited after a 429 whose ``Retry-After`` is missing or unreadable.
DEFAULT_RETRY_AFTER = 1.0
#: The longest ``Retry-After`` honoured (a longer one is cut to this, and logged).
MAX_RETRY_AFTER = 60.0
#: httpx errors raised before the request left: trying again cannot renew twice.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def check_concurrency(value: object) -> int:
    """``value`` if it is an int from 1 to :data:`MAX_CONCURRENCY`, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be an int from 1 to {MAX_CONCURRENCY}, not {value!r}")
    return value


class Gate:
    """The backoff a fleet run's workers share, and the pace it learns from 429s.

    Each worker takes a slot with :meth:`admit` before each call to Shopify and sleeps
    until it; it takes another if a 429 came meanwhile (:attr:`closures` changed). A 429
    answer :meth:`close` s the gate for the ``Retry-After`` Shopify asked, so the workers
    that had not sent yet wait too instead of each collecting its own 429; and from the
    calls let through since the gate last opened, it learns the rate Shopify takes and
    spaces the calls after it reopens a tenth under that rate (the pace then rises 0.2 % a
    call, until the next 429), so that the reopening is no burst. Thread-safe; no I/O.
    """

    __slots__ = ("_admitted", "_guard", "_next", "_opened", "_spacing", "_until", "closures")

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._until = 0.0  # closed until then
        self._next = 0.0  # the next free slot, when the calls are spaced
        self._spacing = 0.0  # seconds between two calls: 0 until a 429
        self._opened = time.monotonic()
        self._admitted = 0
        #: How many times a 429 closed it (or kept it closed longer).
        self.closures = 0

    def admit(self) -> float:
        """Take the next slot: the seconds to sleep before calling (0: call now)."""
        with self._guard:
            now = time.monotonic()
            slot = max(now, self._until, self._next)
            self._next = slot + self._spacing
            self._spacing *= 0.998
            self._admitted += 1
            return slot - now

    def close(self, seconds: float) -> bool:
        """Keep the gate closed for ``seconds`` from now (never shorter than it was).
        ``True`` when it was open: the first 429 since it opened."""
        with self._guard:
            now = time.monotonic()
            self.closures += 1
            was_open = now >= self._until
            if was_open:  # learn the pace
                rate = self._admitted / max(now - self._opened + seconds, 0.001)
                # a tenth under the rate seen, so that the pace and Shopify's clock may drift
                self._spacing = 1.1 / rate if rate > 0 else max(self._spacing * 2, 0.01)
                self._admitted = 0
            self._until = max(self._until, now + seconds)
            self._opened = self._until
            self._next = self._until
            return was_open


class Run:
    """What the workers of one fleet run share: the HTTP client, the backoff gate, and the
    counts of 429s and retries (for the report)."""

    __slots__ = ("_guard", "attempts", "client", "gate", "rate_limited", "retries")

    def __init__(self, client: Any, attempts: int = FLEET_ATTEMPTS) -> None:
        self.client = client
        self.gate = Gate()
        self.attempts = attempts
        self.rate_limited = 0
        self.retries = 0
        self._guard = threading.Lock()

    def shop_gate(self) -> Gate:
        """The gate one shop's calls pass: the run's own, shared by every worker."""
        return self.gate

    def retry_pause(
        self,
        domain: str,
        gate: Gate,
        attempt: int,
        status: int | None,
        headers: Mapping[str, str] | None,
        error: BaseException | None,
    ) -> float | None:
        """Seconds to sleep before calling Shopify again for ``domain`` (0: only pass the
        gate), or ``None`` to take the answer as it is.

        A 429 (the request was refused, nothing renewed) closes ``gate`` for its
        ``Retry-After``; a request that never left (:data:`UNSENT`) is tried again after a
        jittered exponential pause. Any other network error is not: Shopify may have
        renewed the pair, and a refresh token is spent once used.
        """
        if attempt + 1 >= self.attempts:
            return None
        if status == 429:
            seconds = retry_after(headers or {})
            with self._guard:
                self.rate_limited += 1
                self.retries += 1
            first = gate.close(seconds)
            logger.log(
                logging.WARNING if first else logging.DEBUG,
                "%s: Shopify answered 429 Too Many Requests; every worker waits %.2f s",
                domain,
                seconds,
            )
            return 0.0
        if error is not None and isinstance(error, UNSENT):
            with self._guard:
                self.retries += 1
            pause = network_pause(attempt)
            logger.warning(
                "%s: %s before the request left; trying again in %.2f s",
                domain,
                type(error).__name__,
                pause,
            )
            return pause
        return None


class PerTaskRun(Run):
    """A run whose backoff is each shop's own (what a 429 does without the shared gate):
    only for the tests that show the shared gate matters."""

    __slots__ = ()

    def shop_gate(self) -> Gate:
        return Gate()


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds a 429's ``Retry-After`` asks for (seconds, or an HTTP date), within 0 and
    :data:`MAX_RETRY_AFTER`; :data:`DEFAULT_RETRY_AFTER` when it says nothing readable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    if seconds > MAX_RETRY_AFTER:
        logger.warning("Retry-After of %.0f s cut to %.0f s", seconds, MAX_RETRY_AFTER)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def network_pause(attempt: int) -> float:
    """Seconds before trying an unsent request again: 0.25 s doubling, at most 8 s, jittered."""
    return min(0.25 * (1 << attempt), 8.0) * (0.5 + random.random())


class AsyncRecorder:
    """Stands for the run's ``httpx.AsyncClient`` in one ``shopifyapp`` call, which keeps
    neither the error it caught nor the answer's headers: this remembers both."""

    __slots__ = ("_client", "error", "headers", "status")

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self.status: int | None = None
        self.headers: Mapping[str, str] | None = None
        self.error: BaseException | None = None

    async def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.post(*args, **kwargs)
        except httpx.HTTPError as error:
            self.error = error
            raise
        self.status, self.headers = response.status_code, response.headers
        return response


class Recorder:
    """The sync twin of :class:`AsyncRecorder`."""

    __slots__ = ("_client", "error", "headers", "status")

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self.status: int | None = None
        self.headers: Mapping[str, str] | None = None
        self.error: BaseException | None = None

    def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.post(*args, **kwargs)
        except httpx.HTTPError as error:
            self.error = error
            raise
        self.status, self.headers = response.status_code, response.headers
        return response


async def for_each_async(
    batches: AsyncIterator[list[T]],
    work: Callable[[T], Coroutine[Any, Any, None]],
    concurrency: int,
) -> None:
    """Await ``work(item)`` for every item of ``batches``, ``concurrency`` tasks at a time.

    The next batch is read only when a task slot is free, so memory holds one batch and
    the items in flight. ``work`` records its item's outcome itself; an error it raises
    stops the run: no new item starts, and the error is raised once the items in flight
    are done. The same when the run is cancelled (or interrupted): the items in flight
    finish, so that an answer Shopify gave is stored, and none starts after.
    """
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        slots.release()
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())  # type: ignore[arg-type]

    try:
        async for batch in batches:
            for item in batch:
                await slots.acquire()
                if failures:
                    slots.release()
                    raise failures[0]
                task = asyncio.create_task(work(item))
                running.add(task)
                task.add_done_callback(finished)
    finally:
        if running:
            await asyncio.wait(list(running))
    if failures:
        raise failures[0]


def for_each(batches: Iterator[list[T]], work: Callable[[T], None], concurrency: int) -> None:
    """Call ``work(item)`` for every item of ``batches``, in ``concurrency`` threads.

    As :func:`for_each_async`: the next batch is read only when a thread is free, an error
    ``work`` raises stops the run once the items in flight are done, and so does an
    interrupt (``KeyboardInterrupt``). ``concurrency=1`` works in the caller's thread.
    Each item runs in a copy of the caller's context (OpenTelemetry's current span).
    """
    items = itertools.chain.from_iterable(batches)
    if concurrency == 1:
        for item in items:
            work(item)
        return
    slots = threading.BoundedSemaphore(concurrency)
    failures: list[BaseException] = []

    def one(item: T, context: contextvars.Context) -> None:
        try:
            context.run(work, item)
        except BaseException as error:  # handed to the caller's thread, raised there
            failures.append(error)
        finally:
            slots.release()

    with ThreadPoolExecutor(concurrency, thread_name_prefix="shopify-sessions-fleet") as pool:
        for item in items:
            slots.acquire()
            if failures:
                slots.release()
                break
            pool.submit(one, item, contextvars.copy_context())
    if failures:
        raise failures[0]
