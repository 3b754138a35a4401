"""FakeShopify itself: Shopify's rules as its docs state them, steered and counted, reached
from other processes, and a pytest plugin that loads without the [testing] extra."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import pickle
import subprocess
import sys
import textwrap
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from shopify_sessions import offline_session_id
from shopify_sessions.testing import Counters, FakeShopify

TOKEN_URL = "https://{shop}/admin/oauth/access_token"
ADMIN_URL = "https://{shop}/admin/api/2026-10/graphql.json"


def refresh(fake: FakeShopify, shop: str, refresh_token: str | None) -> httpx.Response:
    with fake.http_client() as client:
        return client.post(
            TOKEN_URL.format(shop=shop),
            json={
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )


def exchange(fake: FakeShopify, shop: str, legacy_token: str | None) -> httpx.Response:
    offline = "urn:shopify:params:oauth:token-type:offline-access-token"
    with fake.http_client() as client:
        return client.post(
            TOKEN_URL.format(shop=shop),
            json={
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": legacy_token,
                "subject_token_type": offline,
                "requested_token_type": offline,
                "expiring": 1,
            },
        )


def admin(fake: FakeShopify, shop: str, token: str | None) -> int:
    with fake.http_client() as client:
        response = client.post(
            ADMIN_URL.format(shop=shop),
            headers={"X-Shopify-Access-Token": token or ""},
            json={"query": "{ shop { name } }"},
        )
    return response.status_code


def test_a_seeded_pair_works_and_the_session_is_ready_to_store(
    fake_shopify: FakeShopify, shop: str
) -> None:
    session = fake_shopify.seed_offline(shop.removesuffix(".myshopify.com"))
    assert (session.id, session.shop, session.is_online) == (offline_session_id(shop), shop, False)
    assert session.expires and session.refresh_token and session.refresh_token_expires
    assert session.access_token and session.access_token not in repr(session)
    assert admin(fake_shopify, shop, session.access_token) == 200
    assert fake_shopify.accepts(shop, session.access_token)
    assert not fake_shopify.accepts("another-shop", session.access_token)
    assert fake_shopify.counters(shop) == Counters(admin_200=1)  # accepts() is not counted


def test_a_refresh_rotates_both_tokens_and_retires_nothing_else(
    fake_shopify: FakeShopify, shop: str
) -> None:
    old = fake_shopify.seed_offline(shop, expires_in=-1)
    assert admin(fake_shopify, shop, old.access_token) == 401  # expired
    answer = refresh(fake_shopify, shop, old.refresh_token)
    assert answer.status_code == 200
    pair = answer.json()
    assert pair["access_token"] != old.access_token
    assert pair["refresh_token"] != old.refresh_token
    assert (pair["expires_in"], pair["refresh_token_expires_in"]) == (3600, 90 * 86400)
    assert admin(fake_shopify, shop, pair["access_token"]) == 200
    counters = fake_shopify.counters(shop)
    assert (counters.refreshes, counters.refresh_requests, counters.token_requests) == (1, 1, 1)
    assert (counters.admin_200, counters.admin_401) == (1, 1)
    assert len(fake_shopify.refreshed_at(shop)) == 1


def test_strict_a_reused_refresh_token_locks_the_shop_out(
    fake_shopify: FakeShopify, shop: str
) -> None:
    old = fake_shopify.seed_offline(shop)
    first = refresh(fake_shopify, shop, old.refresh_token).json()
    again = refresh(fake_shopify, shop, old.refresh_token)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert not fake_shopify.accepts(shop, first["access_token"])  # the whole family
    assert refresh(fake_shopify, shop, first["refresh_token"]).status_code == 400
    counters = fake_shopify.counters(shop)
    assert (counters.reuses, counters.lockouts, counters.grace_reuses) == (1, 1, 0)
    assert counters.invalid_grants == 2


def test_grace_a_used_refresh_token_works_until_its_replacement_is_used(
    fake_shopify: FakeShopify, shop: str
) -> None:
    fake_shopify.reset(mode="grace")
    old = fake_shopify.seed_offline(shop)
    lost = refresh(fake_shopify, shop, old.refresh_token).json()  # the answer was lost
    retried = refresh(fake_shopify, shop, old.refresh_token).json()  # honoured again
    assert fake_shopify.accepts(shop, retried["access_token"])
    assert refresh(fake_shopify, shop, lost["refresh_token"]).status_code == 400  # replaced
    assert refresh(fake_shopify, shop, retried["refresh_token"]).status_code == 200
    assert refresh(fake_shopify, shop, old.refresh_token).status_code == 400  # retired now
    counters = fake_shopify.counters(shop)
    assert (counters.grace_reuses, counters.lockouts, counters.refreshes) == (1, 0, 3)


@pytest.mark.parametrize("mode", ["strict", "grace"])
def test_a_legacy_token_is_exchanged_once(fake_shopify: FakeShopify, shop: str, mode: Any) -> None:
    fake_shopify.reset(mode=mode)
    legacy = fake_shopify.seed_offline(shop, legacy=True)
    assert legacy.expires is None and legacy.refresh_token is None
    assert fake_shopify.accepts(shop, legacy.access_token)
    pair = exchange(fake_shopify, shop, legacy.access_token).json()
    assert fake_shopify.accepts(shop, pair["access_token"]) and pair["refresh_token"]
    assert not fake_shopify.accepts(shop, legacy.access_token)  # retired by the exchange
    repeat = exchange(fake_shopify, shop, legacy.access_token)
    if mode == "grace":  # the same pair, until it is used
        assert repeat.json() == pair
        refresh(fake_shopify, shop, pair["refresh_token"])
        assert exchange(fake_shopify, shop, legacy.access_token).status_code == 400
    else:
        assert repeat.status_code == 400
    counters = fake_shopify.counters(shop)
    assert counters.exchanges == 1 and counters.exchange_repeats >= 1


def test_failures_on_demand_are_answered_in_order_then_it_recovers(
    fake_shopify: FakeShopify, shop: str
) -> None:
    session = fake_shopify.seed_offline(shop)
    fake_shopify.fail(shop, 503, "invalid_grant")
    first = refresh(fake_shopify, shop, session.refresh_token)
    second = refresh(fake_shopify, shop, session.refresh_token)
    assert first.status_code == 503
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")
    assert refresh(fake_shopify, shop, session.refresh_token).status_code == 200
    counters = fake_shopify.counters(shop)
    assert (counters.failures, counters.refreshes, counters.reuses) == (2, 1, 0)
    with pytest.raises(ValueError, match="HTTP status or an OAuth error"):
        fake_shopify.fail(shop, 1.5)  # type: ignore[arg-type]


def test_revoke_and_wrong_credentials(fake_shopify: FakeShopify, shop: str) -> None:
    session = fake_shopify.seed_offline(shop)
    legacy = fake_shopify.seed_offline(f"legacy-{shop}", legacy=True)
    fake_shopify.revoke(shop)
    fake_shopify.revoke(legacy.shop)
    assert admin(fake_shopify, shop, session.access_token) == 401
    assert refresh(fake_shopify, shop, session.refresh_token).status_code == 400
    assert not fake_shopify.accepts(legacy.shop, legacy.access_token)
    assert fake_shopify.counters(shop).lockouts == 0  # an uninstall is no breach
    with fake_shopify.http_client() as client:
        wrong = client.post(TOKEN_URL.format(shop=shop), json={"client_id": "x"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})


def test_session_tokens_are_exchanged_for_an_expiring_pair(
    fake_shopify: FakeShopify, shop: str
) -> None:
    id_token = "urn:ietf:params:oauth:token-type:id_token"
    offline = "urn:shopify:params:oauth:token-type:offline-access-token"

    def exchange_id_token(token: str) -> httpx.Response:
        with fake_shopify.http_client() as client:
            return client.post(
                TOKEN_URL.format(shop=shop),
                json={
                    "client_id": fake_shopify.client_id,
                    "client_secret": fake_shopify.client_secret,
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": token,
                    "subject_token_type": id_token,
                    "requested_token_type": offline,
                    "expiring": "1",
                },
            )

    answer = exchange_id_token(fake_shopify.session_token(shop))
    assert answer.status_code == 200
    assert fake_shopify.accepts(shop, answer.json()["access_token"])
    forged = FakeShopify(client_id=fake_shopify.client_id).session_token(shop)
    assert exchange_id_token(forged).status_code == 400
    assert exchange_id_token(fake_shopify.session_token("other-shop")).status_code == 400
    assert fake_shopify.counters(shop).id_token_exchanges == 3


def test_session_tokens_are_exchanged_for_the_staff_users_online_token(
    fake_shopify: FakeShopify, shop: str
) -> None:
    """As Shopify answers it: an access token for a day, no refresh token, the scope, the
    user of the session token's ``sub`` and what that user may do of it."""
    online = "urn:shopify:params:oauth:token-type:online-access-token"

    def exchange_for_online(token: str) -> httpx.Response:
        with fake_shopify.http_client() as client:
            return client.post(
                TOKEN_URL.format(shop=shop),
                json={
                    "client_id": fake_shopify.client_id,
                    "client_secret": fake_shopify.client_secret,
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": token,
                    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                    "requested_token_type": online,
                },
            )

    answer = exchange_for_online(fake_shopify.session_token(shop, user_id=7))
    assert answer.status_code == 200
    body = answer.json()
    token = body.pop("access_token")
    assert token.startswith("shpua_") and admin(fake_shopify, shop, token) == 200
    assert body == {
        "scope": "read_products,write_orders",
        "expires_in": 86399,
        "associated_user_scope": "read_products",
        "associated_user": {
            "id": 7,
            "first_name": "Staff",
            "last_name": "Member 7",
            "email": "staff-7@example.com",
            "account_owner": False,
            "locale": "en",
            "collaborator": False,
            "email_verified": True,
        },
    }
    forged = FakeShopify(client_id=fake_shopify.client_id).session_token(shop)
    assert exchange_for_online(forged).json()["error"] == "invalid_subject_token"
    other_shop = fake_shopify.session_token("other-shop")
    assert exchange_for_online(other_shop).json()["error"] == "invalid_subject_token"
    fake_shopify.revoke(shop)
    assert admin(fake_shopify, shop, token) == 401
    assert fake_shopify.counters(shop).id_token_exchanges == 3


async def test_only_shopify_is_reachable_through_its_clients(fake_shopify: FakeShopify) -> None:
    with fake_shopify.http_client() as client, pytest.raises(httpx.ConnectError, match="fake"):
        client.get("https://example.com/")
    async with fake_shopify.async_http_client() as async_client:
        response = await async_client.post(ADMIN_URL.format(shop="x.myshopify.com"))
        assert response.status_code == 401
        with pytest.raises(httpx.ConnectError, match="only the fake Shopify"):
            await async_client.get("https://shopify.dev/")


def test_reset_forgets_everything_and_refuses_bad_settings(
    fake_shopify: FakeShopify, shop: str
) -> None:
    session = fake_shopify.seed_offline(shop)
    fake_shopify.fail(shop, 503)
    assert admin(fake_shopify, shop, session.access_token) == 200
    fake_shopify.reset(access_lifetime=60)
    assert fake_shopify.counters(shop) == Counters()
    assert not fake_shopify.accepts(shop, session.access_token)
    fresh = fake_shopify.seed_offline(shop)
    assert refresh(fake_shopify, shop, fresh.refresh_token).json()["expires_in"] == 60
    with pytest.raises(ValueError, match="mode"):
        fake_shopify.reset(mode="lenient")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="latency"):
        FakeShopify(latency=-1)
    with pytest.raises(ValueError, match="client_secret"):
        FakeShopify(client_secret="")


def test_omit_expires_answers_refreshes_without_expires_in(
    fake_shopify: FakeShopify, shop: str
) -> None:
    fake_shopify.reset(omit_expires=True)
    session = fake_shopify.seed_offline(shop)
    assert "expires_in" not in refresh(fake_shopify, shop, session.refresh_token).json()


def test_it_starts_and_stops_with_its_context() -> None:
    fake = FakeShopify()
    with pytest.raises(RuntimeError, match="not running"):
        fake.seed_offline("my-shop")
    with fake:
        url = fake.url
        assert fake.seed_offline("my-shop").access_token
        with pytest.raises(RuntimeError, match="running already"), fake:
            pass
    assert "not running" in repr(fake)
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/_fake/app")


def _in_a_worker(fake: FakeShopify, shop: str, token: str) -> tuple[bool, int, str]:
    session = fake.seed_offline(shop)
    return fake.accepts(shop, token), fake.counters(shop).admin_200, session.access_token or ""


def test_other_processes_reach_the_same_server(fake_shopify: FakeShopify, shop: str) -> None:
    session = fake_shopify.seed_offline(shop)
    assert admin(fake_shopify, shop, session.access_token) == 200
    assert pickle.loads(pickle.dumps(fake_shopify)).url == fake_shopify.url
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        accepted, calls, seeded = pool.apply(
            _in_a_worker, (fake_shopify, shop, session.access_token)
        )
    assert (accepted, calls) == (True, 1)
    assert fake_shopify.accepts(shop, seeded)  # the worker's token is the server's
    script = textwrap.dedent(
        """
        import sys
        from shopify_sessions.testing import FakeShopify
        fake = FakeShopify.attach(sys.argv[1])
        print(fake.client_secret, fake.accepts(sys.argv[2], sys.argv[3]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, fake_shopify.url, shop, session.access_token or ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == [fake_shopify.client_secret, "True"], done.stderr


def test_the_plugin_and_the_fake_import_without_the_testing_extra() -> None:
    """pytest loads the plugin wherever shopify-sessions is installed: it must not need
    httpx or PyJWT; only the HTTP clients do, and they name the extra."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["httpx"] = sys.modules["jwt"] = None
        import shopify_sessions.testing._plugin
        from shopify_sessions.testing import FakeShopify
        with FakeShopify() as fake:
            assert fake.seed_offline("my-shop").access_token
            fake.http_client()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install 'shopify-sessions[testing]'" in done.stderr, done.stderr


RESET_SHOP = "reset-check.myshopify.com"


@pytest.mark.parametrize("run", [1, 2])
def test_the_fixture_is_reset_for_each_test(fake_shopify: FakeShopify, run: int) -> None:
    """Run twice: what the first run leaves behind (a token, a failure queued, counters)
    is gone in the second."""
    assert fake_shopify.counters(RESET_SHOP) == Counters()
    session = fake_shopify.seed_offline(RESET_SHOP)
    assert refresh(fake_shopify, RESET_SHOP, session.refresh_token).status_code == 200
    fake_shopify.fail(RESET_SHOP, 503)


# --- what Shopify sends an app: webhooks, session tokens, App Home requests ----------------


def _shopifyapp(fake: FakeShopify) -> Any:
    from shopify_app import ShopifyApp

    return ShopifyApp(fake.client_id, fake.client_secret)


def test_a_webhook_of_any_topic_is_signed_as_shopify_signs_it(fake_shopify: FakeShopify) -> None:
    app = _shopifyapp(fake_shopify)
    for topic, payload in [
        ("app/uninstalled", None),
        ("orders/create", {"id": 1, "total_price": "9.99"}),
        ("shop/redact", b'{"shop_domain": "my-shop.myshopify.com"}'),
    ]:
        webhook = fake_shopify.webhook(topic, "my-shop", payload)
        assert (webhook.topic, webhook.shop) == (topic, "my-shop.myshopify.com")
        assert webhook.headers["X-Shopify-Topic"] == topic
        assert webhook.headers["X-Shopify-Shop-Domain"] == "my-shop.myshopify.com"
        verified = app.verify_webhook_req(
            {
                "method": "POST",
                "headers": webhook.headers,
                "url": "https://app.example/webhooks",
                "body": webhook.body.decode(),
            }
        )
        assert verified.ok, verified.log
        assert verified.shop == "my-shop"  # shopifyapp's shop name
    default = fake_shopify.webhook("app/uninstalled", "my-shop")
    assert json.loads(default.body)["myshopify_domain"] == "my-shop.myshopify.com"
    again = fake_shopify.webhook("app/uninstalled", "my-shop", webhook_id="delivery-1")
    assert again.headers["X-Shopify-Webhook-Id"] == "delivery-1"
    forged = fake_shopify.webhook("app/uninstalled", "my-shop", secret="not-the-app-secret")
    refused = app.verify_webhook_req(
        {
            "method": "POST",
            "headers": forged.headers,
            "url": "https://app.example/webhooks",
            "body": forged.body.decode(),
        }
    )
    assert not refused.ok


def test_an_app_home_url_is_what_shopifyapp_verifies(fake_shopify: FakeShopify) -> None:
    app = _shopifyapp(fake_shopify)
    url = fake_shopify.app_home_url("my-shop", "/products", user_id=7)
    path, _, query = url.partition("?")
    assert path == "/products"
    given = dict(parse_qsl(query))
    names = {"embedded", "host", "id_token", "locale", "session", "shop", "timestamp", "hmac"}
    assert set(given) == names
    assert base64.urlsafe_b64decode(given["host"] + "==") == b"admin.shopify.com/store/my-shop"
    verified = app.verify_app_home_req(
        {"method": "GET", "headers": {}, "url": "https://app.example" + url},
        app_home_patch_id_token_path="/auth/patch-id-token",
    )
    assert verified.ok, verified.log
    assert (verified.shop, verified.user_id) == ("my-shop", "7")  # shopifyapp's shop name
    signed = "&".join(f"{k}={v}" for k, v in sorted(given.items()) if k != "hmac")
    expected = hmac.new(fake_shopify.client_secret.encode(), signed.encode(), hashlib.sha256)
    assert given["hmac"] == expected.hexdigest()
    with pytest.raises(ValueError, match="path"):
        fake_shopify.app_home_url("my-shop", "products?x=1")


def test_the_counters_are_the_ones_the_docs_name() -> None:
    """docs/testing.md's table of counters names every counter of Counters, and no other
    (a first visit to App Home counts in id_token_exchanges, not in exchanges)."""
    import dataclasses
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text()
    table = page[page.index("| counter | what it counts |") :].split("\n\n", 1)[0]
    named = re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)
    assert named == [field.name for field in dataclasses.fields(Counters)]
    assert "App Home" in table.split("`id_token_exchanges`")[1].splitlines()[0]
