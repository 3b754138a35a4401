"""What the lifecycle subcommands share: the app's credentials, and OfflineTokens on a table."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

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


@contextmanager
def offline_tokens(
    url: str, table: str, schema: str | None, key_prefix: str
) -> Iterator[
    tuple[SQLAlchemySessionStorage | RedisSessionStorage | DynamoDBSessionStorage, OfflineTokens]
]:
    """The table's storage, or the Redis storage under ``key_prefix`` (with the token
    cipher of SHOPIFY_SESSIONS_KEYS, when set) and OfflineTokens on it; the storage is
    closed afterwards."""
    client_id, client_secret = app_credentials()
    cipher = cipher_from_environment(KEYS_VARIABLE)[0] if os.environ.get(KEYS_VARIABLE) else None
    storage = command_storage(url, table, schema, key_prefix, cipher)
    try:
        yield storage, OfflineTokens(storage, client_id=client_id, client_secret=client_secret)
    finally:
        storage.close()


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
