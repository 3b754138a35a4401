"""The Redis targets: the library beside raw redis-py and Shopify's Node Redis adapter, in
the same phases as the SQL targets (``phases.py``), on one Redis and on a local Redis
Cluster (three masters, started for the run as the tests start theirs).

    .venv/bin/python -m benchmarks.redis [--rounds 3] [--sessions 2000] [--no-node]

Sides: ``library`` (``RedisSessionStorage`` / ``AsyncRedisSessionStorage`` from a URL);
``raw`` (hand-written redis-py in the same keys, the Node adapter's algorithm: SET the
value, then GET and SET the shop list, so one round trip fewer per store and no atomic
list update); ``node`` (``@shopify/shopify-app-session-storage-redis`` through
``tests/interop/node/bench.mjs``; one Redis only, as the adapter takes no cluster).
After each store phase the library's and raw's keys are compared byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shopify_sessions import Session
from shopify_sessions.redis import AsyncRedisSessionStorage, RedisSessionStorage
from shopify_sessions.redis._client import client_from_url, close_client

from .data import Dataset, generate
from .node import NodePeers, node_missing
from .phases import RUN_ORDER, PhaseResult, Verifier, run_phase, run_phase_async
from .report import percentile

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGETS = ("redis-sync", "redis-async", "cluster-sync", "cluster-async")


def _value(session: Session) -> str:
    return json.dumps(session.to_property_array(True), ensure_ascii=False, separators=(",", ":"))


class RawRedis:
    """Hand-written redis-py in the Node layout, as the Node adapter does it."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client, self.prefix = client, f"{prefix}_"

    def store_session(self, session: Session) -> bool:
        key, index = self.prefix + session.id, self.prefix + session.shop
        self.client.set(key, _value(session))
        listed = self.client.get(index)
        keys = json.loads(listed) if listed else []
        if key not in keys:
            keys.append(key)
            self.client.set(index, json.dumps(keys, ensure_ascii=False, separators=(",", ":")))
        return True

    def load_session(self, id: str) -> Session | None:
        raw = self.client.get(self.prefix + id)
        return None if raw is None else Session.from_property_array(json.loads(raw), True)

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        listed = self.client.get(self.prefix + shop)
        pipeline = self.client.pipeline(transaction=False)
        for key in json.loads(listed) if listed else []:
            pipeline.get(key)
        values = pipeline.execute()
        found = [Session.from_property_array(json.loads(v), True) for v in values if v]
        return sorted(found, key=_order)

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        keys = [self.prefix + id for id in ids]
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.get(key)
        values = pipeline.execute()
        shops: dict[str, set[str]] = {}
        for key, value in zip(keys, values, strict=True):
            if value:
                shops.setdefault(dict(json.loads(value))["shop"], set()).add(key)
                self.client.delete(key)
        for shop, gone in shops.items():
            listed = self.client.get(self.prefix + shop)
            kept = [k for k in json.loads(listed or "[]") if k not in gone]
            if kept:
                self.client.set(self.prefix + shop, json.dumps(kept, separators=(",", ":")))
            else:
                self.client.delete(self.prefix + shop)
        return True

    def close(self) -> None:
        close_client(self.client)


class AsyncRawRedis(RawRedis):
    """:class:`RawRedis` on redis-py's asyncio client."""

    async def store_session(self, session: Session) -> bool:  # type: ignore[override]
        key, index = self.prefix + session.id, self.prefix + session.shop
        await self.client.set(key, _value(session))
        listed = await self.client.get(index)
        keys = json.loads(listed) if listed else []
        if key not in keys:
            keys.append(key)
            await self.client.set(
                index, json.dumps(keys, ensure_ascii=False, separators=(",", ":"))
            )
        return True

    async def load_session(self, id: str) -> Session | None:  # type: ignore[override]
        raw = await self.client.get(self.prefix + id)
        return None if raw is None else Session.from_property_array(json.loads(raw), True)

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:  # type: ignore[override]
        listed = await self.client.get(self.prefix + shop)
        pipeline = self.client.pipeline(transaction=False)
        for key in json.loads(listed) if listed else []:
            pipeline.get(key)
        values = await pipeline.execute()
        found = [Session.from_property_array(json.loads(v), True) for v in values if v]
        return sorted(found, key=_order)

    async def delete_sessions(self, ids: Sequence[str]) -> bool:  # type: ignore[override]
        keys = [self.prefix + id for id in ids]
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.get(key)
        values = await pipeline.execute()
        shops: dict[str, set[str]] = {}
        for key, value in zip(keys, values, strict=True):
            if value:
                shops.setdefault(dict(json.loads(value))["shop"], set()).add(key)
                await self.client.delete(key)
        for shop, gone in shops.items():
            listed = await self.client.get(self.prefix + shop)
            kept = [k for k in json.loads(listed or "[]") if k not in gone]
            if kept:
                await self.client.set(self.prefix + shop, json.dumps(kept, separators=(",", ":")))
            else:
                await self.client.delete(self.prefix + shop)
        return True

    async def close(self) -> None:  # type: ignore[override]
        await self.client.aclose()


def _order(session: Session) -> tuple[bool, float, str]:
    from shopify_sessions import session_order

    return session_order(session)


class Keys:
    """The checks' view of one prefix: how many sessions, and every key's value."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = client_from_url(url, is_async=False, options=None)
        self.prefix = prefix

    def _items(self) -> list[tuple[str, str]]:
        keys = sorted(set(self.client.scan_iter(match=self.prefix + "_*", count=1000)))
        return [(k[len(self.prefix) :], self.client.get(k)) for k in keys]

    def count(self) -> int:
        return sum(1 for _, value in self._items() if value and value.startswith("[["))

    def dump(self) -> list[tuple[Any, ...]]:
        """Every key and value but the migration record, the prefix taken out of both."""
        mark = f'"{self.prefix}_'
        return [
            (key, value.replace(mark, '"_')) for key, value in self._items() if key != "_migrations"
        ]

    def drop(self) -> None:
        for key in list(self.client.scan_iter(match=self.prefix + "*", count=1000)):
            self.client.delete(key)
        close_client(self.client)


def run_side(url: str, target: str, side: str, data: Dataset) -> dict[str, PhaseResult]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    keys = Keys(url, prefix)
    verify = Verifier(data, keys, 0)
    is_async = target.endswith("async")
    try:
        if is_async:
            return asyncio.run(_run_async(url, prefix, side, verify))
        storage: Any = (
            RedisSessionStorage(url, key_prefix=prefix)
            if side == "library"
            else RawRedis(client_from_url(url, is_async=False, options=None), prefix)
        )
        storage.load_session("warm-up-absent-id")
        results = {phase: run_phase(phase, storage, verify) for phase in RUN_ORDER}
        storage.close()
        return results
    finally:
        verify_dumps[side] = verify.dumps
        keys.drop()


async def _run_async(url: str, prefix: str, side: str, verify: Verifier) -> dict[str, PhaseResult]:
    storage: Any = (
        AsyncRedisSessionStorage(url, key_prefix=prefix)
        if side == "library"
        else AsyncRawRedis(client_from_url(url, is_async=True, options=None), prefix)
    )
    await storage.load_session("warm-up-absent-id")
    results = {phase: await run_phase_async(phase, storage, verify) for phase in RUN_ORDER}
    await storage.close()
    return results


verify_dumps: dict[str, dict[str, list[tuple[Any, ...]]]] = {}


def _row(name: str, results: list[dict[str, PhaseResult]], phase: str) -> tuple[float, float]:
    ops = [r[phase].ops_per_s for r in results]
    latencies = sorted(lat for r in results for lat in r[phase].latencies_ns)
    return sorted(ops)[len(ops) // 2], percentile(latencies, 0.5) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--no-node", action="store_true")
    parser.add_argument("--output", default="benchmarks/results/redis.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from redis_cluster import start_cluster

    data = generate(args.sessions, args.shops, 20261201)
    load_before = os.getloadavg()[0]
    results: dict[tuple[str, str], list[dict[str, PhaseResult]]] = {}
    with start_cluster() as cluster:
        urls = {"redis": REDIS_URL, "cluster": cluster.url}
        for round_ in range(args.rounds):
            for target in TARGETS:
                url = urls[target.split("-")[0]]
                sides = ("library", "raw") if round_ % 2 == 0 else ("raw", "library")
                for side in sides:
                    results.setdefault((target, side), []).append(run_side(url, target, side, data))
                for phase, ours in verify_dumps["library"].items():
                    theirs = verify_dumps["raw"][phase]
                    differ = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
                    if differ or len(ours) != len(theirs):
                        raise AssertionError(
                            f"{target} {phase}: raw wrote other bytes: {differ[:1]}"
                        )
                print(f"{target} round {round_ + 1}/{args.rounds}", file=sys.stderr)
            if not args.no_node and node_missing() is None:
                with tempfile.TemporaryDirectory() as workdir:
                    peers = NodePeers(None, data, Path(workdir))  # type: ignore[arg-type]
                    reply = peers.run_redis(REDIS_URL, f"benchnode{uuid.uuid4().hex[:8]}")
                results.setdefault(("redis-node", "node"), []).append(reply)
    lines = report(results, args, load_before)
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    print(text)
    return 0


def report(
    results: dict[tuple[str, str], list[dict[str, PhaseResult]]], args: Any, load_before: float
) -> list[str]:
    load = os.getloadavg()
    lines = [
        "# Redis: the library beside raw redis-py and the Node Redis adapter",
        "",
        f"{args.sessions} sessions over {args.shops} shops, {args.rounds} rounds (median ops/s,"
        f" median latency in ms); 1-minute load average {load_before:.2f} at the start,"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end. `raw` is redis-py in the same"
        " keys without the library's atomic shop list (the Node adapter's GET then SET).",
        "",
        "| target | phase | library ops/s | raw ops/s | library / raw | library p50 ms |"
        " raw p50 ms | Node ops/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for target in TARGETS:
        for phase in ("store_insert", "store_update", "load", "find", "delete", "concurrent_load"):
            lib_ops, lib_p50 = _row("library", results[(target, "library")], phase)
            raw_ops, raw_p50 = _row("raw", results[(target, "raw")], phase)
            node = ""
            if target == "redis-async" and ("redis-node", "node") in results:
                node = f"{_row('node', results[('redis-node', 'node')], phase)[0]:,.0f}"
            lines.append(
                f"| {target} | {phase} | {lib_ops:,.0f} | {raw_ops:,.0f} |"
                f" {lib_ops / raw_ops:.2f} | {lib_p50:.3f} | {raw_p50:.3f} | {node} |"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
