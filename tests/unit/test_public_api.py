"""The public API is what tests/unit/public_api.txt says: every name in the ``__all__`` of
the public modules, with its signature, bases and public members. A change to any of them
fails here until the snapshot is regenerated, which scripts/public_api.py does only when
CHANGELOG.md's Unreleased section names the change (docs/development.md)."""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("public_api", ROOT / "scripts" / "public_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["public_api"] = module
    spec.loader.exec_module(module)
    return module


public_api = _script()


def test_the_public_api_is_the_snapshot() -> None:
    expected = public_api.SNAPSHOT.read_text(encoding="utf-8")
    actual = public_api.render()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), "public_api.txt", "the code"
            )
        )
        raise AssertionError(
            "The public API changed. If that is intended, say so in CHANGELOG.md's Unreleased "
            "section (a line naming each changed name, its class or its module in backticks), "
            "then run:\n\n    .venv/bin/python scripts/public_api.py --update\n\n"
            "and commit tests/unit/public_api.txt with the change. The difference:\n" + diff
        )


def test_the_snapshot_covers_the_modules_the_reference_documents() -> None:
    hooks = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "_ext" / "hooks.py")
    assert hooks is not None and hooks.loader is not None
    module = importlib.util.module_from_spec(hooks)
    hooks.loader.exec_module(module)
    assert set(module.PUBLIC_MODULES) | {"shopify_sessions.cli"} == set(public_api.PUBLIC_MODULES)


def test_an_update_needs_the_changelog_to_name_each_change() -> None:
    old = (
        "[shopify_sessions.tokens]\n"
        "shopify_sessions.tokens:OfflineTokens  class(storage)\n"
        "shopify_sessions.tokens:OfflineTokens.get  def(self, shop: str)\n"
    )
    new = (
        "[shopify_sessions.tokens]\n"
        "shopify_sessions.tokens:OfflineTokens  class(storage)\n"
        "shopify_sessions.tokens:OfflineTokens.get  def(self, shop: str, *, fresh: bool = False)\n"
        "[shopify_sessions.dynamodb]\n"
        "shopify_sessions.dynamodb:DynamoDBSessionStorage  class(table: str)\n"
    )
    changed = public_api.changed_keys(old, new)
    assert changed == [
        "shopify_sessions.dynamodb:DynamoDBSessionStorage",
        "shopify_sessions.tokens:OfflineTokens.get",
    ]
    named = public_api.named_in
    section = "- `OfflineTokens.get(shop, fresh=True)` skips the cache.\n"
    assert named("shopify_sessions.tokens:OfflineTokens.get", section)
    assert not named("shopify_sessions.dynamodb:DynamoDBSessionStorage", section)
    assert named(
        "shopify_sessions.dynamodb:DynamoDBSessionStorage",
        "- `shopify_sessions.dynamodb`: sessions in DynamoDB.\n",
    )
    assert named("shopify_sessions.tokens:OfflineTokens.get", "- `OfflineTokens` is faster.\n")
    assert not named("shopify_sessions.tokens:OfflineTokens.get", "- `get` is faster.\n")
    assert not named("shopify_sessions.tokens:OfflineTokens.get", "- OfflineTokens.get\n")
