"""Count the round trips a storage makes, as the database server or the driver sees them.

- PostgreSQL and MySQL/MariaDB: the storage connects through :class:`WireCounter`, a TCP
  relay in front of the real server that reads the client's side of the wire protocol.
  A PostgreSQL round trip is a simple ``Query`` or a ``Sync`` (each is answered by one
  ``ReadyForQuery``); a MySQL round trip is a command packet (sequence id 0), answered by
  the server before the client sends the next one. ``COM_QUIT`` and ``Terminate`` get no
  answer and are not counted. This sees what every driver sends, ``BEGIN``, ``COMMIT``,
  ``ROLLBACK`` and ``SET`` included, whichever Python layer sent it.
- SQLite (sqlite3 and aiosqlite): SQLite's own trace callback, set on each new DBAPI
  connection, sees every statement SQLite runs, including the ``BEGIN`` and ``COMMIT``
  that Python's sqlite3 module issues by itself.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

from sqlalchemy import event, make_url

try:
    from sqlalchemy.util import await_
except ImportError:  # SQLAlchemy 2.0, which pip picks on Python 3.10, names it so
    from sqlalchemy.util import await_only as await_

PG_SSL_REQUEST = 80877103
PG_GSSENC_REQUEST = 80877104
MYSQL_COMMANDS = {0x03: "COM_QUERY", 0x0E: "COM_PING", 0x16: "COM_STMT_PREPARE"}
MYSQL_QUIT = 0x01


class WireCounter:
    """A relay to ``host:port`` that records each round trip the clients start.

    ``trips`` lists one text per round trip: the SQL of a simple query (or the last
    statement parsed before a ``Sync``) on PostgreSQL, the command and its SQL on MySQL.
    """

    def __init__(self, protocol: str, host: str, port: int) -> None:
        assert protocol in ("postgresql", "mysql")
        self.protocol = protocol
        self.upstream = (host, port)
        self.trips: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """``url`` pointed at the relay."""
        return (
            make_url(url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def take(self) -> list[str]:
        """The round trips recorded since the last call."""
        with self._lock:
            trips, self.trips = self.trips, []
        return trips

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _record(self, text: str) -> None:
        with self._lock:
            self.trips.append(text)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            reader = _PostgresReader(self) if self.protocol == "postgresql" else _MySQLReader(self)
            threading.Thread(
                target=self._client_side, args=(client, server, reader), daemon=True
            ).start()
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()

    def _client_side(self, client: socket.socket, server: socket.socket, reader: Any) -> None:
        try:
            while data := client.recv(65536):
                # Record before forwarding: the trip is counted before the server can answer,
                # so it is counted before the client's call returns.
                reply = reader.feed(data)
                if reply is not None:  # an SSL/GSS request the relay declines itself
                    client.sendall(reply)
                    continue
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(server)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _shut(sink)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


class _PostgresReader:
    """The frontend side of the PostgreSQL protocol, message by message."""

    def __init__(self, counter: WireCounter) -> None:
        self.counter = counter
        self.buffer = b""
        self.started = False
        self.statements: dict[bytes, str] = {}
        self.current = ""

    def feed(self, data: bytes) -> bytes | None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return None
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return None
                self.buffer = self.buffer[length:]
                if code in (PG_SSL_REQUEST, PG_GSSENC_REQUEST):
                    return b"N"  # no encryption: the relay must read the messages
                self.started = True
                continue
            if len(self.buffer) < 5:
                return None
            kind = self.buffer[:1]
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return None
            body, self.buffer = self.buffer[5 : 1 + length], self.buffer[1 + length :]
            if kind == b"Q":
                self.counter._record(body.rstrip(b"\0").decode("utf-8", "replace"))
            elif kind == b"P":  # Parse: statement name, then its SQL
                name, _, rest = body.partition(b"\0")
                self.statements[name] = rest.partition(b"\0")[0].decode("utf-8", "replace")
                self.current = self.statements[name]
            elif kind == b"B":  # Bind: portal name, then the statement it runs
                name = body.split(b"\0", 2)[1]
                self.current = self.statements.get(name, "(unknown prepared statement)")
            elif kind == b"S":  # Sync: the end of one extended-protocol round trip
                self.counter._record(self.current or "(sync)")
                self.current = ""


class _MySQLReader:
    """The client side of the MySQL protocol: packets, and commands among them."""

    def __init__(self, counter: WireCounter) -> None:
        self.counter = counter
        self.buffer = b""

    def feed(self, data: bytes) -> bytes | None:
        self.buffer += data
        while len(self.buffer) >= 4:
            length = int.from_bytes(self.buffer[:3], "little")
            sequence = self.buffer[3]
            if len(self.buffer) < 4 + length:
                return None
            payload, self.buffer = self.buffer[4 : 4 + length], self.buffer[4 + length :]
            if sequence == 0 and payload and payload[0] != MYSQL_QUIT:
                name = MYSQL_COMMANDS.get(payload[0], f"COM_{payload[0]:#04x}")
                self.counter._record(f"{name} {payload[1:].decode('utf-8', 'replace')}".strip())
        return None


class SQLiteTrace:
    """Every statement SQLite runs on the engine's connections (its trace callback)."""

    def __init__(self, engine: Any) -> None:
        self.trips: list[str] = []
        sync_engine = getattr(engine, "sync_engine", engine)
        event.listen(sync_engine, "connect", self._connected)

    def _connected(self, dbapi_connection: Any, record: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        if driver is dbapi_connection:  # sqlite3
            dbapi_connection.set_trace_callback(self.trips.append)
        else:  # aiosqlite: its sqlite3 connection lives on aiosqlite's thread
            await_(driver.set_trace_callback(self.trips.append))

    def take(self) -> list[str]:
        trips, self.trips[:] = list(self.trips), []
        return trips
