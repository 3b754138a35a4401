"""``python -m shopify_sessions.testing``: FakeShopify on its own, until Ctrl-C.

It prints where it listens and the app credentials it accepts, as shell ``export`` lines
(the first line, a comment, says so), then serves: point ``shopify-sessions
refresh-expiring`` and ``migrate-legacy`` at it with ``--shopify-url`` (or
``SHOPIFY_SESSIONS_SHOPIFY_URL``), and steer it from Python with
``FakeShopify.attach(url)`` (seed sessions, queue failures, read counters).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._fake import FakeShopify
from ._server import Server
from ._state import MODES, Settings, ShopifyState

#: The variables the command reads, in the order they are printed.
URL_VARIABLE = "SHOPIFY_SESSIONS_SHOPIFY_URL"
CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE = "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shopify_sessions.testing",
        description=(
            "Run FakeShopify, a strict local Shopify (token endpoint and Admin API), until "
            "Ctrl-C. It prints its URL and the app's credentials it accepts as export lines "
            "for a shell: shopify-sessions refresh-expiring and migrate-legacy reach it "
            "with --shopify-url (or SHOPIFY_SESSIONS_SHOPIFY_URL), and Python steers it "
            "with FakeShopify.attach(url)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (a free one)")
    parser.add_argument("--mode", choices=MODES, default="strict", help="refresh token rules")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the token endpoint waits before it answers (0)",
    )
    parser.add_argument(
        "--access-lifetime", type=float, default=3600.0, help="seconds an access token lasts"
    )
    parser.add_argument(
        "--refresh-lifetime",
        type=float,
        default=90 * 86400.0,
        help="seconds a refresh token lasts",
    )
    parser.add_argument("--client-id", default="fake-shopify-client-id", help="the app's client id")
    parser.add_argument(
        "--client-secret", default=None, help="the app's client secret (a random one)"
    )
    return parser


def main(arguments: Sequence[str] | None = None) -> None:
    """Parse ``arguments``, start the server, print its URL and credentials, and serve
    until interrupted (Ctrl-C or SIGTERM: exit 0)."""
    parser = _parser()
    given = parser.parse_args(arguments)
    try:
        settings = Settings.parse(
            {
                "mode": given.mode,
                "access_lifetime": given.access_lifetime,
                "refresh_lifetime": given.refresh_lifetime,
                "latency": given.latency,
            }
        )
        # The constructor checks the credentials as FakeShopify() checks them.
        fake = FakeShopify(client_id=given.client_id, client_secret=given.client_secret)
    except ValueError as error:
        parser.error(str(error))
    state = ShopifyState(fake.client_id, fake.client_secret)
    state.reset(settings)
    try:
        server = Server(state, given.host, given.port)
    except OSError as error:
        parser.error(f"cannot listen on {given.host}:{given.port}: {error.strerror or error}")
    signal.signal(signal.SIGTERM, _stop)
    print("# FakeShopify is listening; Ctrl-C stops it. For a shell:", flush=False)
    for name, value in (
        (URL_VARIABLE, server.url),
        (CLIENT_ID_VARIABLE, fake.client_id),
        (CLIENT_SECRET_VARIABLE, fake.client_secret),
    ):
        print(f"export {name}={shlex.quote(value)}")
    sys.stdout.flush()  # a program that reads these lines gets them now, not at exit
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _stop(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
