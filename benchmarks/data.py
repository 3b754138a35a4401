"""Deterministic session data for the benchmark.

The mix: ~50% offline sessions, ~35% online sessions with every user field and an
``expires``, ~15% expiring offline sessions with a refresh token. An offline session's
id is ``offline_{shop}``, so each shop has at most one: offline sessions take a shop
each (``bench-000000`` upwards), while online sessions are spread at random over the
first ``shops`` shops, the ones the ``find`` phase queries.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from shopify_sessions import (
    AssociatedUser,
    OnlineAccessInfo,
    Session,
    offline_session_id,
    online_session_id,
    session_order,
)

UTC = timezone.utc
#: Every generated date is at a millisecond offset from this instant.
BASE_TIME = datetime(2031, 6, 1, 12, 0, 0, tzinfo=UTC)
BENCH_SHOP_PREFIX = "bench-"
FILL_SHOP_PREFIX = "fill-"
SCOPES = (
    "read_products,write_products",
    "read_orders,write_orders,read_customers",
    "write_products,read_inventory,write_inventory,read_locations",
)
LOCALES = ("en", "fr", "de", "ja", "pt-BR", "es")
FIRST_NAMES = ("Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances")
LAST_NAMES = ("Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie")


def shop_name(index: int, prefix: str = BENCH_SHOP_PREFIX) -> str:
    """The shop domain number ``index``."""
    return f"{prefix}{index:06d}.myshopify.com"


def _token(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{rng.getrandbits(128):032x}"


def _instant(rng: random.Random, max_days: int) -> datetime:
    return BASE_TIME + timedelta(milliseconds=rng.randrange(max_days * 86_400_000))


def offline_session(rng: random.Random, shop: str, *, expiring: bool) -> Session:
    """An offline session; an expiring one has ``expires`` and a refresh token."""
    session = Session(
        offline_session_id(shop),
        shop,
        "",
        False,
        scope=rng.choice(SCOPES),
        access_token=_token(rng, "shpat"),
    )
    if expiring:
        session.expires = _instant(rng, 1)
        session.refresh_token = _token(rng, "shprt")
        session.refresh_token_expires = _instant(rng, 90)
    return session


def online_session(rng: random.Random, shop: str, user_id: int) -> Session:
    """An online session with every field of its associated user."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    user = AssociatedUser(
        id=user_id,
        first_name=first,
        last_name=last,
        email=f"{first.lower()}.{last.lower()}{user_id % 1000}@example.com",
        email_verified=rng.random() < 0.9,
        account_owner=rng.random() < 0.2,
        locale=rng.choice(LOCALES),
        collaborator=rng.random() < 0.1,
    )
    return Session(
        online_session_id(shop, user_id),
        shop,
        f"{rng.getrandbits(60):015x}",
        True,
        scope=rng.choice(SCOPES),
        expires=_instant(rng, 1),
        access_token=_token(rng, "shpua"),
        online_access_info=OnlineAccessInfo(associated_user=user),
    )


@dataclass
class Dataset:
    """The sessions of one benchmark run, and what each phase must read back."""

    sessions: list[Session]
    updated: list[Session]
    shops: list[str]
    #: Ids of each queried shop's sessions, in ``session_order``.
    expected_by_shop: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [session.id for session in self.sessions]


def generate(count: int, shops: int, seed: int) -> Dataset:
    """``count`` sessions, ``shops`` of whose shops are queried by ``find``; seeded."""
    rng = random.Random(seed)
    find_shops = [shop_name(index) for index in range(shops)]
    sessions: list[Session] = []
    user_ids: set[int] = set()
    next_offline_shop = 0
    for _ in range(count):
        draw = rng.random()
        if draw < 0.50 or draw >= 0.85:
            shop = shop_name(next_offline_shop)
            next_offline_shop += 1
            sessions.append(offline_session(rng, shop, expiring=draw >= 0.85))
        else:
            user_id = rng.randrange(10**9, 10**13)
            while user_id in user_ids:
                user_id = rng.randrange(10**9, 10**13)
            user_ids.add(user_id)
            sessions.append(online_session(rng, rng.choice(find_shops), user_id))
    rng.shuffle(sessions)
    updated = [with_new_token(rng, session) for session in sessions]
    expected: dict[str, list[Session]] = {shop: [] for shop in find_shops}
    for session in updated:
        if session.shop in expected:
            expected[session.shop].append(session)
    return Dataset(
        sessions=sessions,
        updated=updated,
        shops=find_shops,
        expected_by_shop={
            shop: [s.id for s in sorted(found, key=session_order)]
            for shop, found in expected.items()
        },
    )


def with_new_token(rng: random.Random, session: Session) -> Session:
    """A copy of ``session`` with another access token."""
    changed = session.copy()
    changed.access_token = _token(rng, "shpat" if not session.is_online else "shpua")
    return changed


def fill_sessions(count: int, seed: int) -> Iterator[Session]:
    """``count`` sessions for scale mode, four per shop (one offline, three online).

    Their shops (``fill-...``) never overlap the benchmark's own (``bench-...``).
    """
    rng = random.Random(seed + 1)
    for index in range(count):
        shop = shop_name(index // 4, FILL_SHOP_PREFIX)
        if index % 4 == 0:
            yield offline_session(rng, shop, expiring=index % 8 == 0)
        else:
            yield online_session(rng, shop, 10**12 + index)
