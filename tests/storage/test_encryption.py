"""Encryption at rest of access and refresh tokens, with key rotation."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import String

from conftest import Harness, tampered
from shopify_sessions import (
    FernetTokenCipher,
    InvalidSessionError,
    Session,
    SessionStorageError,
    TokenDecryptionError,
)
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

KEY_1, KEY_2 = Fernet.generate_key(), Fernet.generate_key()
ACCESS, REFRESH = "shpat_0123456789abcdef", "shprt_fedcba9876543210"


def sample(id: str = "offline_enc.myshopify.com", **fields: Any) -> Session:
    fields.setdefault("access_token", ACCESS)
    fields.setdefault("refresh_token", REFRESH)
    return Session(id, "enc.myshopify.com", "", False, scope="write_products", **fields)


def stored_tokens(harness: Harness, id: str) -> tuple[str, str]:
    q = harness.quote
    [(access, refresh)] = harness.sql(
        f"SELECT {q('accessToken')}, {q('refreshToken')} FROM {q(harness.table_name)} "
        f"WHERE {q('id')} = :id",
        id=id,
    )
    return access, refresh


@pytest.fixture
async def plain(sql_harness: Harness) -> Any:
    """A storage without encryption, on a created default table."""
    storage = sql_harness.storage(table=sql_harness.default_table())
    await storage.create_table()
    return storage


async def test_tokens_are_stored_encrypted_and_load_in_clear(
    sql_harness: Harness, plain: Any
) -> None:
    storage = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k1": KEY_1})
    )
    session = sample()
    await storage.store_session(session)
    access, refresh = stored_tokens(sql_harness, session.id)
    assert access.startswith("fernet:k1:") and refresh.startswith("fernet:k1:")
    assert ACCESS not in access and REFRESH not in refresh
    assert await storage.load_session(session.id) == session
    # Without the key, the row holds nothing usable.
    assert (await plain.load_session(session.id)).access_token == access


async def test_plaintext_rows_still_load_and_are_reencrypted(
    sql_harness: Harness, plain: Any
) -> None:
    legacy = [sample(f"legacy_{i}") for i in range(7)]
    for session in legacy:
        await plain.store_session(session)
    await plain.store_session(sample("no_tokens", access_token=None, refresh_token=None))
    # Plaintext is refused unless the app opted in to reading it, for the time until
    # reencrypt_tokens has rewritten it.
    strict = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k1": KEY_1})
    )
    with pytest.raises(TokenDecryptionError, match="read_plaintext_tokens") as raised:
        await strict.load_session("legacy_0")
    assert ACCESS not in str(raised.value)
    with pytest.raises(TokenDecryptionError):
        await strict.reencrypt_tokens()
    cipher = FernetTokenCipher({"k1": KEY_1}, read_plaintext_tokens=True)
    storage = sql_harness.storage(table=sql_harness.table_name, token_cipher=cipher)
    for session in legacy:
        assert await storage.load_session(session.id) == session

    assert await storage.reencrypt_tokens(batch_size=3) == 7
    assert stored_tokens(sql_harness, "legacy_0")[0].startswith("fernet:k1:")
    assert stored_tokens(sql_harness, "no_tokens")[1] is None
    assert await storage.reencrypt_tokens() == 0
    for session in legacy:
        assert await storage.load_session(session.id) == session
        assert await strict.load_session(session.id) == session


async def test_key_rotation(sql_harness: Harness, plain: Any) -> None:
    old = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k1": KEY_1})
    )
    for index in range(5):
        await old.store_session(sample(f"rotate_{index}"))

    both = FernetTokenCipher({"k2": KEY_2, "k1": KEY_1})
    rotating = sql_harness.storage(table=sql_harness.table_name, token_cipher=both)
    assert await rotating.load_session("rotate_0") == sample("rotate_0")
    await rotating.store_session(sample("rotate_new"))
    assert stored_tokens(sql_harness, "rotate_new")[0].startswith("fernet:k2:")
    assert await rotating.reencrypt_tokens(batch_size=2) == 5

    only_new = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k2": KEY_2})
    )
    for index in range(5):
        assert await only_new.load_session(f"rotate_{index}") == sample(f"rotate_{index}")


async def test_unknown_key_or_altered_text_is_a_typed_error(
    sql_harness: Harness, plain: Any
) -> None:
    writer = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k1": KEY_1})
    )
    await writer.store_session(sample())
    stranger = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k9": KEY_2})
    )
    with pytest.raises(TokenDecryptionError, match="'k1'") as raised:
        await stranger.load_session(sample().id)
    assert isinstance(raised.value, SessionStorageError)

    access, _ = stored_tokens(sql_harness, sample().id)
    q = sql_harness.quote
    sql_harness.sql(
        f"UPDATE {q(sql_harness.table_name)} SET {q('accessToken')} = :v",
        v=access[:-8] + "AAAAAAA=",
    )
    with pytest.raises(TokenDecryptionError) as raised:
        await writer.load_session(sample().id)
    assert ACCESS not in str(raised.value)


async def test_ciphertext_too_long_for_the_column_is_refused_before_sending(
    sql_harness: Harness,
) -> None:
    table = sql_harness.default_table()
    table.c.accessToken.type = String(255)
    table.create(sql_harness.raw)
    storage = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k1": KEY_1})
    )
    await storage.store_session(sample(access_token="shpat_" + "a" * 32))
    with pytest.raises(InvalidSessionError, match="accessToken"):
        await storage.store_session(sample("long", access_token="shpat_" + "a" * 150))
    assert await storage.load_session("long") is None


async def test_reencrypt_needs_a_cipher(plain: Any) -> None:
    with pytest.raises(InvalidSessionError, match="token_cipher"):
        await plain.reencrypt_tokens()


def test_cipher_rejects_bad_configuration_and_hides_keys() -> None:
    with pytest.raises(ValueError):
        FernetTokenCipher({})
    with pytest.raises(ValueError):
        FernetTokenCipher({"a:b": KEY_1})
    with pytest.raises(ValueError):
        FernetTokenCipher({"k1": KEY_1}, current="k2")
    cipher = FernetTokenCipher({"k1": KEY_1})
    assert KEY_1.decode() not in repr(cipher)
    assert cipher.decrypt(cipher.encrypt("tök€n")) == "tök€n"
    with pytest.raises(TokenDecryptionError):
        cipher.decrypt("shpat_plain")
    legacy = FernetTokenCipher({"k1": KEY_1}, read_plaintext_tokens=True)
    assert legacy.reads_plaintext_tokens and not cipher.reads_plaintext_tokens
    assert "read_plaintext_tokens=True" in repr(legacy)
    assert legacy.decrypt("shpat_plain") == "shpat_plain"
    # Even then, what was an encrypted value (it holds a ':') never reads as a token.
    with pytest.raises(TokenDecryptionError):
        legacy.decrypt("A" + cipher.encrypt("shpat_x")[1:])
    # Text planted after the prefix is not shown as a key id.
    with pytest.raises(TokenDecryptionError, match="no key id") as raised:
        cipher.decrypt("fernet:shpat_planted token")
    assert "planted" not in str(raised.value)


async def test_reencryption_leaves_alone_a_row_a_store_changed_meanwhile(
    sql_harness: Harness, plain: Any
) -> None:
    await plain.store_session(sample())
    assert sql_harness.raw is not None
    cipher = FernetTokenCipher({"k1": KEY_1}, read_plaintext_tokens=True)
    storage = SQLAlchemySessionStorage(
        sql_harness.raw, table=sql_harness.table_name, token_cipher=cipher
    )
    storage.check_table()
    core = storage._core
    assert core is not None
    with sql_harness.raw.connect() as connection:
        rows = connection.execute(core.token_page(10), {"after": ""}).all()
    updates = core.reencryptions(rows)
    assert len(updates) == 1

    storage.store_session(sample(access_token="shpat_rotated_meanwhile"))
    with sql_harness.raw.begin() as connection:
        assert connection.execute(core.token_update, updates).rowcount == 0
    assert storage.load_session(sample().id).access_token == "shpat_rotated_meanwhile"


async def test_replace_session_compares_tokens_not_ciphertexts(
    sql_harness: Harness, plain: Any
) -> None:
    cipher = FernetTokenCipher({"k1": KEY_1})
    storage = sql_harness.storage(table=sql_harness.table_name, token_cipher=cipher)
    old = sample()
    await storage.store_session(old)
    renewed = sample(access_token="shpat_renewed", refresh_token="shprt_renewed")
    assert await storage.replace_session(renewed, previous=old) is True
    assert await storage.load_session(old.id) == renewed
    assert all(t.startswith("fernet:k1:") for t in stored_tokens(sql_harness, old.id))
    stale = sample(access_token="shpat_stale", refresh_token="shprt_stale")
    assert await storage.replace_session(stale, previous=old) is False
    assert await storage.load_session(old.id) == renewed
    # A plaintext row (stored before encryption was turned on) is refused, typed, unless
    # the app reads plaintext tokens; then it is compared in clear too.
    await plain.store_session(old)
    with pytest.raises(TokenDecryptionError):
        await storage.replace_session(renewed, previous=old)
    legacy = FernetTokenCipher({"k1": KEY_1}, read_plaintext_tokens=True)
    storage = sql_harness.storage(table=sql_harness.table_name, token_cipher=legacy)
    assert await storage.replace_session(renewed, previous=old) is True
    assert await storage.load_session(old.id) == renewed


async def test_no_altered_character_of_a_stored_token_reads_as_a_token(
    sql_harness: Harness, plain: Any
) -> None:
    storage = sql_harness.storage(
        table=sql_harness.table_name, token_cipher=FernetTokenCipher({"k1": KEY_1})
    )
    session = sample()
    await storage.store_session(session)
    access, _ = stored_tokens(sql_harness, session.id)
    q = sql_harness.quote
    update = f"UPDATE {q(sql_harness.table_name)} SET {q('accessToken')} = :v"
    planted = ["shpat_planted", "Aernet:k1:" + access[len("fernet:k1:") :], ""]
    tried = 0
    for value in [*tampered(access), *planted]:
        sql_harness.sql(update, v=value)
        if value == "":  # an empty token is no token: the session has none
            assert (await storage.load_session(session.id)).access_token is None
            continue
        with pytest.raises(TokenDecryptionError) as raised:
            await storage.load_session(session.id)
        assert ACCESS not in str(raised.value) and "planted" not in str(raised.value)
        tried += 1
    assert tried > 2 * len(access)
