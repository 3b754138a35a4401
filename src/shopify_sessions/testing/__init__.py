"""Test an app's token flow without Shopify: :class:`FakeShopify`, a strict local
Shopify (token endpoint and Admin API), and the pytest fixture ``fake_shopify``.

Install with ``pip install 'shopify-sessions[testing]'``; the fixture is then there in
every pytest run (the plugin is registered under the ``pytest11`` entry point; disable
it with ``-p no:shopify_sessions``).
"""

from ._fake import Counters, FakeShopify, SignedWebhook

__all__ = ["Counters", "FakeShopify", "SignedWebhook"]

for _name in __all__:
    globals()[_name].__module__ = __name__
