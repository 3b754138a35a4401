"""Loaded by the command's subprocess in the tests that put this folder on PYTHONPATH; the
command itself is unchanged.

- ``FAKE_SHOPIFY_URL``: every httpx client it makes sends ``https://<shop>.myshopify.com``
  to that FakeShopify, as the tests' own clients do.
- ``HIDE_MODULES`` (comma-separated): those modules look uninstalled.
"""

import os
import sys

for _module in filter(None, os.environ.get("HIDE_MODULES", "").split(",")):
    sys.modules[_module] = None  # type: ignore[assignment]

_URL = os.environ.get("FAKE_SHOPIFY_URL")

if _URL:
    import httpx

    from shopify_sessions.testing._transport import RoutingTransport

    _original_init = httpx.Client.__init__

    def _routed_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("transport", RoutingTransport(_URL))
        _original_init(self, *args, **kwargs)

    httpx.Client.__init__ = _routed_init  # type: ignore[method-assign]
