"""The DynamoDB core without a database: the Node adapter's items, dates as JavaScript
writes them, the lease's requests, the table's checks, and the log filter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from shopify_sessions import (
    AssociatedUser,
    InvalidSessionError,
    OnlineAccessInfo,
    Session,
    SessionDataError,
)
from shopify_sessions.dynamodb._core import DynamoDBCore, from_iso, to_iso
from shopify_sessions.dynamodb._lease import Lease
from shopify_sessions.dynamodb._redact import redacted

UTC = timezone.utc

#: What the Node adapter (8.0.0) wrote for this online session on a local DynamoDB, as
#: the low-level item (reference: dynamodb-django-release.md).
NODE_ONLINE_ITEM = json.loads(
    '{"id":{"S":"a.myshopify.com_42"},"shop":{"S":"a.myshopify.com"},"state":{"S":"s"},'
    '"isOnline":{"BOOL":true},"scope":{"S":"read_products"},'
    '"expires":{"S":"2026-12-06T18:07:38.559Z"},"accessToken":{"S":"u"},'
    '"onlineAccessInfo":{"M":{"expires_in":{"N":"1"},"associated_user_scope":{"S":"read_products"},'
    '"associated_user":{"M":{"id":{"N":"42"},"first_name":{"S":"A"},"last_name":{"S":"B"},'
    '"email":{"S":"a@b"},"email_verified":{"BOOL":true},"account_owner":{"BOOL":true},'
    '"locale":{"S":"en"},"collaborator":{"BOOL":false}}}}}}'
)


def core(**options: object) -> DynamoDBCore:
    return DynamoDBCore("shopify_sessions", "shop_index", None, False, **options)  # type: ignore[arg-type]


def node_online_session() -> Session:
    user = AssociatedUser(
        id=42,
        first_name="A",
        last_name="B",
        email="a@b",
        email_verified=True,
        account_owner=True,
        locale="en",
        collaborator=False,
    )
    return Session(
        "a.myshopify.com_42",
        "a.myshopify.com",
        "s",
        True,
        scope="read_products",
        expires=datetime(2026, 12, 6, 18, 7, 38, 559000, tzinfo=UTC),
        access_token="u",
        online_access_info=OnlineAccessInfo(
            associated_user=user, expires_in=1, associated_user_scope="read_products"
        ),
    )


def test_the_item_is_the_node_adapters_attribute_for_attribute_in_its_order() -> None:
    item = core().item(node_online_session())
    assert json.dumps(item) == json.dumps(NODE_ONLINE_ITEM)
    read = core().read(NODE_ONLINE_ITEM, "a.myshopify.com_42").session
    assert read == node_online_session()
    assert read.online_access_info == node_online_session().online_access_info


def test_an_offline_item_with_a_refresh_token() -> None:
    session = Session.offline(
        "b.myshopify.com",
        access_token="shpat",
        scope="write_products",
        expires=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
        refresh_token="shprt",
        refresh_token_expires=datetime(2026, 3, 1, tzinfo=UTC),
    )
    item = core().item(session)
    assert list(item) == [
        "id", "shop", "state", "isOnline", "scope", "expires",
        "accessToken", "refreshToken", "refreshTokenExpires",
    ]  # fmt: skip
    assert item["expires"] == {"S": "2026-01-02T03:04:05.006Z"}
    assert item["refreshTokenExpires"] == {"S": "2026-03-01T00:00:00.000Z"}
    assert core().read(item).session == session


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
        (datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "0999-12-31T23:59:59.999Z"),
        (datetime(2031, 5, 6, 9, 8, 9, 123000, tzinfo=timezone(timedelta(hours=2))),
         "2031-05-06T07:08:09.123Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), "9999-12-31T23:59:59.999Z"),
    ],
)  # fmt: skip
def test_dates_are_javascripts_iso_strings(moment: datetime, text: str) -> None:
    assert to_iso(moment) == text
    assert from_iso(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_iso_strings_of_other_writers_are_read_and_garbage_is_refused() -> None:
    assert from_iso("2026-12-06T18:07:38Z") == datetime(2026, 12, 6, 18, 7, 38, tzinfo=UTC)
    assert from_iso("2026-12-06T19:07:38.5+01:00") == datetime(
        2026, 12, 6, 18, 7, 38, 500000, tzinfo=UTC
    )
    for garbage in ("", "yesterday", "1765044458559", "2026-13-01T00:00:00.000Z"):
        with pytest.raises(ValueError):
            from_iso(garbage)


@pytest.mark.parametrize(
    "item",
    [
        {"id": {"S": "x"}},
        {"id": {"S": "x"}, "shop": {"N": "1"}},
        {"id": {"S": "x"}, "shop": {"S": "s"}, "isOnline": {"S": "true"}},
        {"id": {"S": "x"}, "shop": {"S": "s"}, "expires": {"S": "tomorrow"}},
        {"id": {"S": "x"}, "shop": {"S": "s"}, "onlineAccessInfo": {"S": "42"}},
        {"id": {"S": "x"}, "shop": {"S": "s"},
         "onlineAccessInfo": {"M": {"associated_user": {"M": {"id": {"N": "4.5"}}}}}},
        {"id": {"S": "lock:x"}, "lockOwner": {"S": "o"}, "leaseExpires": {"N": "1"}},
    ],
)  # fmt: skip
def test_an_item_that_is_no_session_is_a_typed_error(item: dict[str, object]) -> None:
    item = {**item, "accessToken": {"S": "shpat_SECRET"}}
    with pytest.raises(SessionDataError) as raised:
        core().read(item)  # type: ignore[arg-type]
    assert "SECRET" not in str(raised.value)


def test_what_dynamodb_would_refuse_is_refused_before_any_call() -> None:
    with pytest.raises(InvalidSessionError, match="index"):
        core().item(Session("x", "", "", False))
    with pytest.raises(InvalidSessionError, match="locks"):
        core().key("lock:offline_a.myshopify.com")
    with pytest.raises(InvalidSessionError, match="2048"):
        core().key("x" * 2049)
    with pytest.raises(InvalidSessionError, match="400 KB"):
        core().item(Session("x", "s", "", False, access_token="t" * 500_000))
    with pytest.raises(ValueError, match="table_name"):
        DynamoDBCore("ab", "shop_index", None, False)
    with pytest.raises(ValueError, match="shop_index"):
        DynamoDBCore("shopify_sessions", "bad index", None, False)


def test_unknown_attributes_are_kept_as_extra_and_ttl_is_ours() -> None:
    item = {
        "id": {"S": "x"}, "shop": {"S": "s"}, "plan": {"S": "pro"}, "visits": {"N": "3"},
        "ttl": {"N": "1"}, "scope": {"NULL": True},
    }  # fmt: skip
    session = core().read(item).session  # type: ignore[arg-type]
    assert session.extra == {"plan": "pro", "visits": 3}
    assert session.scope is None


def test_online_sessions_carry_a_ttl_when_asked() -> None:
    session = node_online_session()
    assert "ttl" not in core().item(session)
    expiring = DynamoDBCore("shopify_sessions", "shop_index", None, True).item(session)
    assert expiring["ttl"] == {"N": str(int(session.expires.timestamp()))}  # type: ignore[union-attr]
    assert "ttl" not in DynamoDBCore("t12", "shop_index", None, True).item(
        Session("o", "s", "", False)
    )


def test_the_fence_conditions_on_the_stored_token_attributes() -> None:
    stored = {"id": {"S": "x"}, "shop": {"S": "s"}, "accessToken": {"S": "old"}}
    request = core().replace_request({"id": {"S": "x"}}, stored)  # type: ignore[arg-type]
    assert request["ConditionExpression"] == (
        "attribute_exists(id) AND accessToken = :accessToken AND attribute_not_exists(refreshToken)"
    )
    assert request["ExpressionAttributeValues"] == {":accessToken": {"S": "old"}}


def test_the_lease_takes_a_free_or_expired_lock_and_only_its_owner_renews_or_releases() -> None:
    lease = Lease("t12", "offline_a.myshopify.com", "owner-1", 10.0)
    take = lease.take_request()
    assert take["Item"]["id"] == {"S": "lock:offline_a.myshopify.com"}
    assert "shop" not in take["Item"]  # never in the index on shop
    assert take["ConditionExpression"] == (
        "attribute_not_exists(id) OR #expires < :now OR #owner = :owner"
    )
    ends = int(take["Item"]["leaseExpires"]["N"])
    now = int(take["ExpressionAttributeValues"][":now"]["N"])
    assert 9_900 <= ends - now <= 10_100
    assert lease.renew_request()["ConditionExpression"] == "#owner = :owner"
    assert lease.release_request()["ConditionExpression"] == "#owner = :owner"
    assert lease.release_request()["ExpressionAttributeValues"] == {":owner": {"S": "owner-1"}}


def test_the_table_check_lists_every_problem() -> None:
    assert (
        core().table_problems(
            {
                "AttributeDefinitions": [
                    {"AttributeName": "id", "AttributeType": "S"},
                    {"AttributeName": "shop", "AttributeType": "S"},
                ],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "shop_index",
                        "KeySchema": [{"AttributeName": "shop", "KeyType": "HASH"}],
                    }
                ],
            }
        )
        == []
    )
    problems = core().table_problems(
        {
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        }
    )
    assert len(problems) == 2 and "hash key id" in problems[0] and "shop_index" in problems[1]


def test_the_log_filter_removes_tokens_signatures_and_security_tokens() -> None:
    body = (
        b'{"TableName":"t","Item":{"id":{"S":"x"},"accessToken":{"S":"shpat_SECRET"},'
        b'"refreshToken":{"S":"shprt_SECRET"}},"ExpressionAttributeValues":'
        b'{":accessToken":{"S":"old_SECRET"}}}'
    )
    headers = {
        "Authorization": b"AWS4-HMAC-SHA256 Credential=AKID/x, Signature=SECRET0123",
        "X-Amz-Security-Token": b"SECRETSESSION",
    }
    text = redacted(f"Making request with params: {{'body': {body!r}, 'headers': {headers!r}}}")
    assert "SECRET" not in text
    assert text.count("<redacted>") == 5
    assert '"id":{"S":"x"}' in text
    canonical = "POST\n/\n\nhost:x\nx-amz-security-token:SECRETSESSION\nx-amz-target:y\n\nhash"
    assert redacted(canonical) == canonical.replace("SECRETSESSION", "<redacted>")
    assert redacted("Signature:\nSECRET0123") == "Signature:\n<redacted>"
