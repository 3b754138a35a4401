"""The pytest plugin of :mod:`shopify_sessions.testing` (entry point ``pytest11``).

Loaded by every pytest run where shopify-sessions is installed, so it imports nothing
that the ``[testing]`` extra brings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._fake import FakeShopify


@pytest.fixture(scope="session")
def fake_shopify_server() -> Iterator[FakeShopify]:
    """One :class:`~shopify_sessions.testing.FakeShopify` for the whole test session,
    started on first use and stopped at the end; never reset by itself."""
    with FakeShopify() as shopify:
        yield shopify


@pytest.fixture
def fake_shopify(fake_shopify_server: FakeShopify) -> FakeShopify:
    """The session's :class:`~shopify_sessions.testing.FakeShopify`, reset for this test:
    strict mode, no tokens, no queued failures, every counter at zero."""
    fake_shopify_server.reset()
    return fake_shopify_server
