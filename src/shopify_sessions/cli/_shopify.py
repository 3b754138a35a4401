"""What the lifecycle subcommands share: the app's credentials, where Shopify is
(``--shopify-url``), and OfflineTokens on a table."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, cast

import httpx

from .._errors import ShopTokenError
from ..tokens import OfflineTokens, RefreshReport
from ._connect import command_storage
from ._output import ConfigurationError, ExitCode, Output
from ._reencrypt import KEYS_VARIABLE, cipher_from_environment

if TYPE_CHECKING:
    from ..dynamodb import DynamoDBSessionStorage
    from ..redis import RedisSessionStorage
    from ..sqlalchemy import SQLAlchemySessionStorage

CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE = "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET"


def app_credentials() -> tuple[str, str]:
    """The app's client id and secret, from the environment (never from the command line,
    where other users of the machine could read them).

    Raises:
        ConfigurationError: one or both are not set (both named at once).
    """
    variables = (CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE)
    values = [os.environ.get(variable, "").strip() for variable in variables]
    missing = [variable for variable, value in zip(variables, values, strict=True) if not value]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigurationError(
            f"{' and '.join(missing)} {verb} not set: this subcommand calls Shopify with the "
            "app's client id (SHOPIFY_API_KEY) and client secret (SHOPIFY_API_SECRET), "
            "which it reads from its environment only"
        )
    return values[0], values[1]


class _NoExchange:
    """What a dry run holds in place of OfflineTokens: it asks Shopify nothing, so it
    needs no credentials; a call to Shopify would be a bug, and says so."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"a dry run exchanges nothing (OfflineTokens.{name} was called)")


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
    url: str,
    table: str,
    schema: str | None,
    key_prefix: str,
    shopify_url: str | None = None,
    *,
    exchange: bool = True,
) -> Iterator[
    tuple[SQLAlchemySessionStorage | RedisSessionStorage | DynamoDBSessionStorage, OfflineTokens]
]:
    """The table's storage, or the Redis storage under ``key_prefix`` (with the token
    cipher of SHOPIFY_SESSIONS_KEYS, when set) and OfflineTokens on it, reaching Shopify
    at ``shopify_url`` when given; the storage (and that client) is closed afterwards.

    The credentials are checked before the database is touched. ``exchange=False`` (a
    dry run) needs none: what it gets in place of OfflineTokens refuses any call.

    Each shop's outcome is reported by :func:`finish`; the lifecycle's own log record of
    it (which would name the shop a second time, on stderr) is left out meanwhile.
    """
    credentials = app_credentials() if exchange else None
    cipher = cipher_from_environment(KEYS_VARIABLE)[0] if os.environ.get(KEYS_VARIABLE) else None
    storage = command_storage(url, table, schema, key_prefix, cipher)
    http = shopify_client(shopify_url) if credentials else None
    logger = logging.getLogger("shopify_sessions")
    logger.addFilter(_not_an_outcome)
    try:
        if credentials is None:
            tokens = cast(OfflineTokens, _NoExchange())
        else:
            client_id, client_secret = credentials
            tokens = OfflineTokens(
                storage, client_id=client_id, client_secret=client_secret, http_client=http
            )
        yield storage, tokens
    finally:
        logger.removeFilter(_not_an_outcome)
        storage.close()
        if http is not None:
            http.close()


def _not_an_outcome(record: logging.LogRecord) -> bool:
    """Whether a log record of the lifecycle is anything but a renewal's outcome (those
    carry ``outcome``; the command prints each one itself)."""
    return not hasattr(record, "outcome")


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
        output.warn(f"{shop}: {failure_text(failure)}")
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
                "message": failure_text(error),
            }
            for shop, error in report.failed.items()
        },
    }


#: What an operator reads for the codes whose ``shopifyapp`` wording is advice to a web
#: handler ("Respond 500 ... using the provided response"), not to whoever runs this.
_OPERATOR_WORDING = {
    "network_error": "Shopify could not be reached (a network error)",
    "server_error": "Shopify answered with server errors (5xx), retries included",
    "invalid_client": (
        "Shopify refused the app's credentials: check SHOPIFY_API_KEY and "
        "SHOPIFY_API_SECRET (or the app was uninstalled)"
    ),
}
#: ``shopifyapp``'s suggestion of how to answer an HTTP request, at the end of its details.
_RESPOND_HINT = re.compile(r"\s*Respond \d{3}\b[^.]*\busing the provided response\.?")
#: Said of every failure but a lost store (whose message says it): nothing was stored.
_TRY_AGAIN = "; the stored session is unchanged, the next run tries again"


def failure_text(error: BaseException) -> str:
    """What went wrong for one shop, for an operator: without the shop (its line or JSON
    key names it), without ``shopifyapp``'s advice to a web handler, with the code."""
    if not isinstance(error, ShopTokenError):
        return str(error) or type(error).__name__
    detail = str(error).removeprefix(f"{error.shop}: ").removeprefix(f"{error.code}: ")
    wording = _OPERATOR_WORDING.get(error.code) or _RESPOND_HINT.sub("", detail).strip()
    if error.code != "store_failed":
        wording += _TRY_AGAIN
    return f"{wording or 'failed'} ({error.code})"
