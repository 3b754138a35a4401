"""What the lifecycle subcommands share: the app's credentials, where Shopify is
(``--shopify-url``), and OfflineTokens on a table."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import httpx

from .._errors import InvalidSessionError, ShopTokenError
from ..tokens import OfflineTokens, RefreshReport
from ._connect import command_storage
from ._output import ExitCode, Output
from ._reencrypt import KEYS_VARIABLE, cipher_from_environment

if TYPE_CHECKING:
    from ..dynamodb import DynamoDBSessionStorage
    from ..redis import RedisSessionStorage
    from ..sqlalchemy import SQLAlchemySessionStorage

CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE = "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET"


def app_credentials() -> tuple[str, str]:
    """The app's client id and secret, from the environment (never from the command line,
    where other users of the machine could read them)."""
    values = []
    for variable in (CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE):
        value = os.environ.get(variable, "").strip()
        if not value:
            raise InvalidSessionError(f"{variable} is not set: the app's credentials are needed")
        values.append(value)
    return values[0], values[1]


class ShopifyAt(httpx.HTTPTransport):
    """Sends every request for a shop (``https://<shop>.myshopify.com/...``) to the
    address of ``--shopify-url`` instead; the Host header keeps the shop, which is how a
    FakeShopify tells shops apart (and how a proxy knows where to go)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = httpx.URL(url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self._url.scheme, host=self._url.host, port=self._url.port
        )
        return super().handle_request(request)


def shopify_client(shopify_url: str | None) -> httpx.Client | None:
    """The httpx client for Shopify's calls: one routed to ``shopify_url``, or ``None``
    (OfflineTokens' own, to Shopify itself)."""
    if not shopify_url:
        return None
    return httpx.Client(transport=ShopifyAt(shopify_url), timeout=30.0)


@contextmanager
def offline_tokens(
    url: str, table: str, schema: str | None, key_prefix: str, shopify_url: str | None = None
) -> Iterator[
    tuple[SQLAlchemySessionStorage | RedisSessionStorage | DynamoDBSessionStorage, OfflineTokens]
]:
    """The table's storage, or the Redis storage under ``key_prefix`` (with the token
    cipher of SHOPIFY_SESSIONS_KEYS, when set) and OfflineTokens on it, reaching Shopify
    at ``shopify_url`` when given; the storage (and that client) is closed afterwards."""
    client_id, client_secret = app_credentials()
    cipher = cipher_from_environment(KEYS_VARIABLE)[0] if os.environ.get(KEYS_VARIABLE) else None
    storage = command_storage(url, table, schema, key_prefix, cipher)
    http = shopify_client(shopify_url)
    try:
        yield (
            storage,
            OfflineTokens(
                storage, client_id=client_id, client_secret=client_secret, http_client=http
            ),
        )
    finally:
        storage.close()
        if http is not None:
            http.close()


def finish(
    output: Output, report: RefreshReport, done: str, total: int, **more: object
) -> NoReturn:
    """Tell what happened to each shop, and exit: 1 when one failed or needs its merchant.

    ``done`` names what happened to the shops in ``report.refreshed`` (``refreshed``,
    ``migrated``), in the message and as the JSON key; ``more`` goes into the JSON too.
    """
    output.say(f"{done} {len(report.refreshed)} of {total} session(s)")
    for shop in report.reauthorization_required:
        output.say(f"{shop}: the merchant must open the app again")
    for shop, failure in report.failed.items():
        output.warn(f"{shop}: {failure}")
    code = ExitCode.OK if report.ok else ExitCode.PROBLEM
    output.done({done: report.refreshed, **_document(report), **more}, code)


def _document(report: RefreshReport) -> dict[str, object]:
    """A report as JSON: shops only, and each failure's code and message (never a token)."""
    return {
        "reauthorization_required": report.reauthorization_required,
        "failed": {
            shop: {
                "type": type(error).__name__,
                "code": error.code if isinstance(error, ShopTokenError) else None,
                "message": str(error),
            }
            for shop, error in report.failed.items()
        },
    }
