"""Loaded by the command's subprocess in the lifecycle tests (PYTHONPATH): every httpx
client it makes sends ``https://<shop>.myshopify.com`` to the FakeShopify at
``FAKE_SHOPIFY_URL``, as the tests' own clients do. The command itself is unchanged."""

import os

_URL = os.environ.get("FAKE_SHOPIFY_URL")

if _URL:
    import httpx

    from shopify_sessions.testing._transport import RoutingTransport

    _original_init = httpx.Client.__init__

    def _routed_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("transport", RoutingTransport(_URL))
        _original_init(self, *args, **kwargs)

    httpx.Client.__init__ = _routed_init  # type: ignore[method-assign]
