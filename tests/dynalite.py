"""A local DynamoDB for the tests: npm's dynalite (pinned in tests/interop/node) on a free
port, in memory, stopped at the end of the run; and a small HTTP proxy in front of it that
injects what DynamoDB does under load (throttling, dropped connections, unprocessed batch
keys, an index that lags), so the storages meet those failures through their real
clients, never through a stubbed one."""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "interop" / "node"
CLI = NODE_DIR / "node_modules" / "dynalite" / "cli.js"
REGION = "us-east-1"
#: dynalite takes any credentials; botocore needs some to sign with.
CREDENTIALS = {"aws_access_key_id": "dynalite", "aws_secret_access_key": "dynalite"}
CREDENTIALS_ENV = {
    "AWS_ACCESS_KEY_ID": "dynalite",
    "AWS_SECRET_ACCESS_KEY": "dynalite",
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def missing() -> str | None:
    """Why dynalite cannot be started here, or None."""
    if shutil.which("node") is None:
        return "Node.js is not installed: the DynamoDB tests run dynalite on it"
    if not CLI.exists():
        return f"dynalite is not installed: run `npm ci` in {NODE_DIR}"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dynalite:
    """dynalite in memory on a free port; tables are created and deleted at once."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                "node",
                str(CLI),
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--createTableMs", "0",
                "--deleteTableMs", "0",
                "--updateTableMs", "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                raise RuntimeError(f"dynalite exited: {self.process.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("dynalite did not listen within 30 s")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, table: str, endpoint: str | None = None) -> str:
        """The storages' ``dynamodb://`` URL of ``table`` here."""
        return f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint or self.endpoint}"

    def client(self, endpoint: str | None = None) -> Any:
        """A boto3 client of this dynalite (or of ``endpoint``, a proxy before it)."""
        import boto3

        return boto3.client(
            "dynamodb", endpoint_url=endpoint or self.endpoint, region_name=REGION, **CREDENTIALS
        )

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr is not None:
            self.process.stderr.close()


def dynalite_index_slot(id: str) -> str:
    """The 6 hex digits dynalite keys an index entry by, after the shop: ids that share
    them collide in its index (a dynalite quirk, not DynamoDB's), so the test avoids them."""
    return hashlib.md5(b"Outliers" + id.encode()).hexdigest()[:6]


def many_ids(shop: str, count: int, width: int) -> list[str]:
    ids: list[str] = []
    slots: set[str] = set()
    n = 0
    while len(ids) < count:
        id = f"{shop}_{n:06d}_".ljust(width, "x")
        n += 1
        if dynalite_index_slot(id) not in slots:
            slots.add(dynalite_index_slot(id))
            ids.append(id)
    return ids


# --- the fault-injecting proxy -----------------------------------------------------------

THROTTLED = "ProvisionedThroughputExceededException"


@dataclass
class Faults:
    """What the proxy does to the next requests; each count goes down as it is used."""

    #: operation (``PutItem``, or ``*`` for any) -> requests answered with a throttling error
    throttle: Counter[str] = field(default_factory=Counter)
    #: operation -> requests whose connection is closed before any answer...
    drop_before: Counter[str] = field(default_factory=Counter)
    #: ... or after dynalite did the work (the answer is lost, the write was made)
    drop_after: Counter[str] = field(default_factory=Counter)
    #: ids the index leaves out of its answers (an index that has not caught up)
    lagging_ids: set[str] = field(default_factory=set)
    #: BatchGetItem / BatchWriteItem answers that leave all but this many keys unprocessed
    #: (None: DynamoDB's own answer)
    batch_processed: int | None = None
    #: how many batch answers to cut that way
    batch_cuts: int = 0
    #: operation -> requests seen (every request, faulted or not)
    seen: Counter[str] = field(default_factory=Counter)
    #: every request that reached dynalite: (operation, its parameters)
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class FaultProxy:
    """An HTTP proxy on a free port forwarding to dynalite, with :class:`Faults`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults = Faults()
        self.guard = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _take(self, counter: Counter[str], operation: str) -> bool:
        with self.guard:
            for key in (operation, "*"):
                if counter[key] > 0:
                    counter[key] -= 1
                    return True
        return False

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", 0)))
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        with self.guard:
            self.faults.seen[operation] += 1
        if self._take(self.faults.drop_before, operation):
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if self._take(self.faults.throttle, operation):
            error = {
                "__type": f"com.amazonaws.dynamodb.v20120810#{THROTTLED}",
                "message": "The level of configured provisioned throughput was exceeded",
            }
            self._answer(request, 400, json.dumps(error).encode(), {})
            return
        payload = json.loads(body) if body else {}
        cut = self._cut_batch(operation)
        held: list[Any] = []
        if cut is not None and operation == "BatchWriteItem":
            for table, writes in payload["RequestItems"].items():
                payload["RequestItems"][table], rest = writes[:cut], writes[cut:]
                held += [(table, rest)] if rest else []
            body = json.dumps(payload).encode()
        with self.guard:
            self.faults.sent.append((operation, payload))
        status, headers, answer = self._forward(request, body)
        if self._take(self.faults.drop_after, operation):
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if status == 200:
            answer = self._rewrite(operation, payload, answer, cut, held)
        self._answer(request, status, answer, headers)

    def _cut_batch(self, operation: str) -> int | None:
        if operation not in ("BatchGetItem", "BatchWriteItem"):
            return None
        with self.guard:
            if self.faults.batch_processed is None or self.faults.batch_cuts <= 0:
                return None
            self.faults.batch_cuts -= 1
            return self.faults.batch_processed

    def _rewrite(
        self,
        operation: str,
        request: dict[str, Any],
        answer: bytes,
        cut: int | None,
        held: list[Any],
    ) -> bytes:
        lagging = self.faults.lagging_ids
        if operation == "Query" and request.get("IndexName") and lagging:
            document = json.loads(answer)
            document["Items"] = [i for i in document["Items"] if i["id"]["S"] not in lagging]
            document["Count"] = len(document["Items"])
            return json.dumps(document).encode()
        if operation == "BatchGetItem" and cut is not None:
            document = json.loads(answer)
            for table, items in document["Responses"].items():
                document["Responses"][table], rest = items[:cut], items[cut:]
                if rest:
                    keys = [{"id": item["id"]} for item in rest]
                    left = dict(request["RequestItems"][table], Keys=keys)
                    document.setdefault("UnprocessedKeys", {})[table] = left
            return json.dumps(document).encode()
        if operation == "BatchWriteItem" and held:
            document = json.loads(answer)
            document["UnprocessedItems"] = {table: rest for table, rest in held}
            return json.dumps(document).encode()
        return answer

    def _forward(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
            upstream.request("POST", request.path, body=body, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
            kept = {
                k: v
                for k, v in response.getheaders()
                if k.lower() in ("x-amzn-requestid", "content-type")
            }
            return response.status, kept, answer
        finally:
            upstream.close()

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        request.send_response(status)
        request.send_header(
            "Content-Type", headers.get("Content-Type", "application/x-amz-json-1.0")
        )
        request.send_header("x-amz-crc32", str(zlib.crc32(body)))
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def reset(self) -> None:
        with self.guard:
            self.faults = Faults()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fault_proxy(dynalite: Dynalite) -> Iterator[FaultProxy]:
    proxy = FaultProxy(dynalite.port)
    try:
        yield proxy
    finally:
        proxy.close()
