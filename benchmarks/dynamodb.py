"""The DynamoDB targets: the library beside raw boto3 (and aiobotocore) and Shopify's Node
DynamoDB adapter, in the same phases as the SQL targets (``phases.py``), on one dynalite
started for the run (npm's, as the tests start theirs), interleaved round by round.

    .venv/bin/python -m benchmarks.dynamodb [--rounds 3] [--sessions 1000] [--no-node]

Sides: ``library`` (``DynamoDBSessionStorage`` / ``AsyncDynamoDBSessionStorage``);
``raw`` (hand-written botocore calls in the same items and the same requests: PutItem, a
consistent GetItem, a Query of the index then consistent BatchGetItems, BatchWriteItem
deletes); ``node`` (``@shopify/shopify-app-session-storage-dynamodb`` through
``tests/interop/node/bench.mjs``: an eventually consistent GetItem per session, one
Query page then a GetItem per id, a DeleteItem per id). After each store phase the
library's and raw's items are compared attribute for attribute.

dynalite is DynamoDB's API on a local LevelDB in one Node process: it measures what each
side costs in the client (building, signing, parsing requests), not DynamoDB's latency,
which in AWS (single-digit milliseconds a request) dwarfs both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shopify_sessions import AssociatedUser, OnlineAccessInfo, Session, session_order
from shopify_sessions.dynamodb import AsyncDynamoDBSessionStorage, DynamoDBSessionStorage

from .data import Dataset, generate
from .node import NodePeers, node_missing
from .phases import RUN_ORDER, PhaseResult, Verifier, run_phase, run_phase_async
from .report import percentile

TARGETS = ("dynamodb-sync", "dynamodb-async")
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


# --- raw: what an app writes without the library -----------------------------------------


def _iso(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


USER_FIELDS = (
    ("id", "N"),
    ("first_name", "S"),
    ("last_name", "S"),
    ("email", "S"),
    ("email_verified", "BOOL"),
    ("account_owner", "BOOL"),
    ("locale", "S"),
    ("collaborator", "BOOL"),
)


def _deletes(ids: Sequence[str]) -> list[dict[str, Any]]:
    return [{"DeleteRequest": {"Key": {"id": {"S": id}}}} for id in ids]


def _item(s: Session) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": {"S": s.id},
        "shop": {"S": s.shop},
        "state": {"S": s.state},
        "isOnline": {"BOOL": s.is_online},
    }
    if s.scope:
        item["scope"] = {"S": s.scope}
    if s.expires:
        item["expires"] = {"S": _iso(s.expires)}
    if s.access_token:
        item["accessToken"] = {"S": s.access_token}
    if s.refresh_token:
        item["refreshToken"] = {"S": s.refresh_token}
    if s.refresh_token_expires:
        item["refreshTokenExpires"] = {"S": _iso(s.refresh_token_expires)}
    if s.online_access_info is not None:
        u = s.online_access_info.associated_user
        user: dict[str, Any] = {}
        for name, kind in USER_FIELDS:
            value = getattr(u, name)
            if value is not None:
                user[name] = {kind: str(value) if kind == "N" else value}
        item["onlineAccessInfo"] = {"M": {"associated_user": {"M": user}}}
    return item


def _session(item: dict[str, Any]) -> Session:
    from datetime import datetime

    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    def moment(name: str) -> datetime | None:
        value = text(name)
        return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))

    info = None
    if "onlineAccessInfo" in item:
        fields = item["onlineAccessInfo"]["M"]["associated_user"]["M"]
        user = AssociatedUser(
            **{k: int(v["N"]) if "N" in v else next(iter(v.values())) for k, v in fields.items()}
        )
        info = OnlineAccessInfo(associated_user=user)
    return Session(
        item["id"]["S"],
        item["shop"]["S"],
        text("state") or "",
        item["isOnline"]["BOOL"],
        scope=text("scope"),
        expires=moment("expires"),
        access_token=text("accessToken"),
        refresh_token=text("refreshToken"),
        refresh_token_expires=moment("refreshTokenExpires"),
        online_access_info=info,
    )


class RawDynamoDB:
    """Hand-written botocore calls in the Node adapter's items."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def store_session(self, session: Session) -> bool:
        self.client.put_item(TableName=self.table, Item=_item(session))
        return True

    def load_session(self, id: str) -> Session | None:
        answer = self.client.get_item(
            TableName=self.table, Key={"id": {"S": id}}, ConsistentRead=True
        )
        return _session(answer["Item"]) if "Item" in answer else None

    def find_sessions_by_shop(self, shop: str) -> list[Session]:
        ids: list[str] = []
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "shop_index",
            "KeyConditionExpression": "shop = :shop",
            "ExpressionAttributeValues": {":shop": {"S": shop}},
        }
        while True:
            page = self.client.query(**query)
            ids += [item["id"]["S"] for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found: list[Session] = []
        for start in range(0, len(ids), 100):
            keys = [{"id": {"S": id}} for id in ids[start : start + 100]]
            request = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                found += [_session(item) for item in answer["Responses"][self.table]]
                request = answer.get("UnprocessedKeys") or {}
        return sorted(found, key=session_order)

    def delete_sessions(self, ids: Sequence[str]) -> bool:
        for start in range(0, len(ids), 25):
            request = {self.table: _deletes(ids[start : start + 25])}
            while request:
                request = self.client.batch_write_item(RequestItems=request).get("UnprocessedItems")
        return True

    def close(self) -> None:
        self.client.close()


class AsyncRawDynamoDB(RawDynamoDB):
    """:class:`RawDynamoDB` on aiobotocore."""

    async def store_session(self, session: Session) -> bool:  # type: ignore[override]
        await self.client.put_item(TableName=self.table, Item=_item(session))
        return True

    async def load_session(self, id: str) -> Session | None:  # type: ignore[override]
        answer = await self.client.get_item(
            TableName=self.table, Key={"id": {"S": id}}, ConsistentRead=True
        )
        return _session(answer["Item"]) if "Item" in answer else None

    async def find_sessions_by_shop(self, shop: str) -> list[Session]:  # type: ignore[override]
        ids: list[str] = []
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "shop_index",
            "KeyConditionExpression": "shop = :shop",
            "ExpressionAttributeValues": {":shop": {"S": shop}},
        }
        while True:
            page = await self.client.query(**query)
            ids += [item["id"]["S"] for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found: list[Session] = []
        for start in range(0, len(ids), 100):
            keys = [{"id": {"S": id}} for id in ids[start : start + 100]]
            request = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = await self.client.batch_get_item(RequestItems=request)
                found += [_session(item) for item in answer["Responses"][self.table]]
                request = answer.get("UnprocessedKeys") or {}
        return sorted(found, key=session_order)

    async def delete_sessions(self, ids: Sequence[str]) -> bool:  # type: ignore[override]
        for start in range(0, len(ids), 25):
            request = {self.table: _deletes(ids[start : start + 25])}
            while request:
                request = (await self.client.batch_write_item(RequestItems=request)).get(
                    "UnprocessedItems"
                )
        return True

    async def close(self) -> None:  # type: ignore[override]
        await self.client.close()


# --- the checks' view of a table ---------------------------------------------------------


class Items:
    """How many session items a table holds, and every item (for the byte comparison)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def _items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**scan)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count(self) -> int:
        return sum(1 for item in self._items() if "shop" in item)

    def dump(self) -> list[tuple[Any, ...]]:
        return sorted((item["id"]["S"], json.dumps(item)) for item in self._items())


def run_side(endpoint: str, target: str, side: str, data: Dataset) -> dict[str, PhaseResult]:
    import boto3

    table = f"bench{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)
    options = {"endpoint_url": endpoint, "region_name": REGION, "client_options": CREDENTIALS}
    creator = DynamoDBSessionStorage(table, **options)  # type: ignore[arg-type]
    creator.create_table()
    creator.close()
    verify = Verifier(data, Items(client, table), 0)
    try:
        if target.endswith("async"):
            return asyncio.run(_run_async(endpoint, table, side, verify))
        storage: Any = (
            DynamoDBSessionStorage(table, **options)  # type: ignore[arg-type]
            if side == "library"
            else RawDynamoDB(
                boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS),
                table,
            )
        )
        storage.load_session("warm-up-absent-id")
        results = {phase: run_phase(phase, storage, verify) for phase in RUN_ORDER}
        storage.close()
        return results
    finally:
        verify_dumps[side] = verify.dumps
        client.delete_table(TableName=table)
        client.close()


async def _run_async(
    endpoint: str, table: str, side: str, verify: Verifier
) -> dict[str, PhaseResult]:
    from aiobotocore.session import get_session

    storage: Any
    if side == "library":
        storage = AsyncDynamoDBSessionStorage(
            table, endpoint_url=endpoint, region_name=REGION, client_options=CREDENTIALS
        )
    else:
        context = get_session().create_client(
            "dynamodb", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS
        )
        storage = AsyncRawDynamoDB(await context.__aenter__(), table)
    await storage.load_session("warm-up-absent-id")
    results = {phase: await run_phase_async(phase, storage, verify) for phase in RUN_ORDER}
    await storage.close()
    return results


verify_dumps: dict[str, dict[str, list[tuple[Any, ...]]]] = {}

#: The calls whose CPU time is measured: what each one does, by side.
CPU_CALLS = ("store_session", "load_session", "find_sessions_by_shop")


def cpu_per_call(endpoint: str, data: Dataset, rounds: int, calls: int) -> dict[str, Any]:
    """The process's CPU time per call (``time.process_time``), library and raw alternated
    ``rounds`` times, sync and asyncio: what a side costs the host, which a busy machine's
    other processes move far less than wall-clock time."""
    import boto3

    table = f"benchcpu{uuid.uuid4().hex[:6]}"
    options: Any = {"endpoint_url": endpoint, "region_name": REGION, "client_options": CREDENTIALS}
    library = DynamoDBSessionStorage(table, **options)
    library.create_table()
    raw = RawDynamoDB(
        boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS), table
    )
    sessions = data.sessions[:calls]
    for session in sessions:
        library.store_session(session)
    arguments = {
        "store_session": sessions,
        "load_session": [s.id for s in sessions],
        "find_sessions_by_shop": [s.shop for s in sessions],
    }
    samples: dict[tuple[str, str, str], list[float]] = {}
    for round_ in range(rounds):
        sides = (("library", library), ("raw", raw))
        for side, storage in sides if round_ % 2 == 0 else sides[::-1]:
            for call in CPU_CALLS:
                method = getattr(storage, call)
                started = time.process_time()
                for argument in arguments[call]:
                    method(argument)
                spent = (time.process_time() - started) / len(arguments[call])
                samples.setdefault(("sync", call, side), []).append(spent * 1e6)
        asyncio.run(_cpu_async(endpoint, table, arguments, round_, samples))
    library.client.delete_table(TableName=table)
    library.close()
    raw.close()
    return {key: sorted(values)[len(values) // 2] for key, values in samples.items()}


async def _cpu_async(
    endpoint: str,
    table: str,
    arguments: dict[str, list[Any]],
    round_: int,
    samples: dict[tuple[str, str, str], list[float]],
) -> None:
    from aiobotocore.session import get_session

    library = AsyncDynamoDBSessionStorage(
        table, endpoint_url=endpoint, region_name=REGION, client_options=CREDENTIALS
    )
    context = get_session().create_client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS
    )
    raw = AsyncRawDynamoDB(await context.__aenter__(), table)
    await library.load_session("warm-up-absent-id")
    await raw.load_session("warm-up-absent-id")
    sides: tuple[tuple[str, Any], ...] = (("library", library), ("raw", raw))
    for side, storage in sides if round_ % 2 == 0 else sides[::-1]:
        for call in CPU_CALLS:
            method = getattr(storage, call)
            started = time.process_time()
            for argument in arguments[call]:
                await method(argument)
            spent = (time.process_time() - started) / len(arguments[call])
            samples.setdefault(("async", call, side), []).append(spent * 1e6)
    await library.close()
    await raw.close()


def _row(results: list[dict[str, PhaseResult]], phase: str) -> tuple[float, float]:
    ops = [r[phase].ops_per_s for r in results]
    latencies = sorted(lat for r in results for lat in r[phase].latencies_ns)
    return sorted(ops)[len(ops) // 2], percentile(latencies, 0.5) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--shops", type=int, default=250)
    parser.add_argument("--no-node", action="store_true")
    parser.add_argument("--cpu-rounds", type=int, default=5)
    parser.add_argument("--cpu-calls", type=int, default=200)
    parser.add_argument("--output", default="benchmarks/results/dynamodb.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from dynalite import Dynalite

    data = generate(args.sessions, args.shops, 20261206)
    load_before = os.getloadavg()[0]
    loads: list[float] = []
    results: dict[tuple[str, str], list[dict[str, PhaseResult]]] = {}
    server = Dynalite()
    try:
        for round_ in range(args.rounds):
            for target in TARGETS:
                sides = ("library", "raw") if round_ % 2 == 0 else ("raw", "library")
                for side in sides:
                    results.setdefault((target, side), []).append(
                        run_side(server.endpoint, target, side, data)
                    )
                for phase, ours in verify_dumps["library"].items():
                    if ours != verify_dumps["raw"][phase]:
                        raise AssertionError(f"{target} {phase}: raw wrote other items")
                print(f"{target} round {round_ + 1}/{args.rounds}", file=sys.stderr)
            if not args.no_node and node_missing() is None:
                with tempfile.TemporaryDirectory() as workdir:
                    peers = NodePeers(None, data, Path(workdir))  # type: ignore[arg-type]
                    reply = peers.run_dynamodb(server.endpoint, f"benchnode{uuid.uuid4().hex[:8]}")
                results.setdefault(("dynamodb-node", "node"), []).append(reply)
            loads.append(os.getloadavg()[0])
        cpu = cpu_per_call(server.endpoint, data, args.cpu_rounds, args.cpu_calls)
        loads.append(os.getloadavg()[0])
    finally:
        server.close()
    lines = report(results, args, load_before, loads)
    lines += [
        "",
        f"CPU time of this process per call (µs, median of {args.cpu_rounds} rounds of"
        f" {args.cpu_calls} calls, library and raw alternated; above 1.0 the library costs"
        " more; the load average moves it far less than wall-clock time):",
        "",
        "| client | call | library µs | raw µs | library / raw |",
        "|---|---|---:|---:|---:|",
    ]
    for kind in ("sync", "async"):
        for call in CPU_CALLS:
            ours, theirs = cpu[(kind, call, "library")], cpu[(kind, call, "raw")]
            lines.append(f"| {kind} | {call} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |")
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    print(text)
    return 0


def report(
    results: dict[tuple[str, str], list[dict[str, PhaseResult]]],
    args: Any,
    load_before: float,
    loads: list[float],
) -> list[str]:
    load = os.getloadavg()
    between = " ".join(f"{value:.2f}" for value in loads)
    lines = [
        "# DynamoDB: the library beside raw boto3 / aiobotocore and the Node DynamoDB adapter",
        "",
        f"{args.sessions} sessions over {args.shops} shops, {args.rounds} rounds, on one local"
        " dynalite (median ops/s, median latency in ms); 1-minute load average"
        f" {load_before:.2f} at the start, {between} after each round, {load[0]:.2f}"
        f" {load[1]:.2f} {load[2]:.2f} at the end. `raw` is botocore in the same items and"
        " requests; Node is `@shopify/shopify-app-session-storage-dynamodb` (eventually"
        " consistent reads, a GetItem per session in find, a DeleteItem per id).",
        "",
        "| target | phase | library ops/s | raw ops/s | library / raw | library p50 ms |"
        " raw p50 ms | Node ops/s | library / Node |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in TARGETS:
        for phase in ("store_insert", "store_update", "load", "find", "delete", "concurrent_load"):
            lib_ops, lib_p50 = _row(results[(target, "library")], phase)
            raw_ops, raw_p50 = _row(results[(target, "raw")], phase)
            node = versus = ""
            if target == "dynamodb-async" and ("dynamodb-node", "node") in results:
                node_ops = _row(results[("dynamodb-node", "node")], phase)[0]
                node, versus = f"{node_ops:,.0f}", f"{lib_ops / node_ops:.2f}"
            lines.append(
                f"| {target} | {phase} | {lib_ops:,.0f} | {raw_ops:,.0f} |"
                f" {lib_ops / raw_ops:.2f} | {lib_p50:.3f} | {raw_p50:.3f} | {node} | {versus} |"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
