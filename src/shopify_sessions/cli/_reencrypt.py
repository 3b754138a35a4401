"""``shopify-sessions reencrypt``: rewrite tokens under the newest key from the environment."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .._encryption import FernetTokenCipher
from .._errors import InvalidSessionError
from ._connect import command_storage, count_sessions
from ._options import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_TABLE,
    BatchSize,
    Json,
    KeyPrefix,
    Schema,
    TableName,
    Url,
)
from ._output import reporting
from ._progress import progress_bar

KEYS_VARIABLE = "SHOPIFY_SESSIONS_KEYS"

KeysEnv = Annotated[
    str,
    typer.Option(
        "--keys-env",
        help=(
            "Environment variable holding the Fernet keys as 'id:key,id:key', newest first "
            "(the newest encrypts, all decrypt)."
        ),
    ),
]


def cipher_from_environment(
    variable: str, *, read_plaintext_tokens: bool = False
) -> tuple[FernetTokenCipher, str]:
    """The cipher of the keys in ``variable`` and its newest key id; never echoes a key.

    ``read_plaintext_tokens`` is for ``reencrypt`` alone, whose job is to encrypt them."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise InvalidSessionError(
            f"{variable} is not set: give the keys as 'id:key,id:key', newest first"
        )
    keys: dict[str, str] = {}
    for position, item in enumerate(value.split(","), start=1):
        key_id, separator, key = item.strip().partition(":")
        if not separator or not key_id or not key:
            raise InvalidSessionError(f"{variable}: entry {position} is not 'id:key'")
        keys[key_id] = key
    try:
        cipher = FernetTokenCipher(keys, read_plaintext_tokens=read_plaintext_tokens)
        return cipher, next(iter(keys))
    except ValueError as error:
        raise InvalidSessionError(
            f"{variable}: a key is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from error


def reencrypt(
    url: Url,
    table: TableName = DEFAULT_TABLE,
    schema: Schema = None,
    keys_env: KeysEnv = KEYS_VARIABLE,
    batch_size: BatchSize = 500,
    as_json: Json = False,
    key_prefix: KeyPrefix = DEFAULT_KEY_PREFIX,
) -> None:
    """Encrypt plaintext tokens, and re-encrypt those under older keys, with the newest key.

    Each rewrite is a compare-and-swap: a row changed meanwhile keeps what was stored.
    """
    with reporting("reencrypt", as_json) as output:
        # Reading plaintext tokens is what reencrypt is for: it encrypts them.
        cipher, newest = cipher_from_environment(keys_env, read_plaintext_tokens=True)
        read = [0]

        def advanced(rows: int) -> None:
            read[0] += rows
            advance(rows)

        storage = command_storage(url, table, schema, key_prefix, cipher)
        total = count_sessions(storage)
        with progress_bar(output, "re-encrypting", total) as advance:
            rewritten = storage.reencrypt_tokens(batch_size=batch_size, progress=advanced)
        total = max(total, read[0])
        storage.close()
        output.say(f"rewrote {rewritten} of {total} row(s) under key {newest}")
        output.done({"rewritten": rewritten, "rows": total, "key_id": newest})
