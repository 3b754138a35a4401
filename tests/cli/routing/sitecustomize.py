"""Loaded by the command's subprocess in the lifecycle tests (PYTHONPATH): every httpx
client it makes sends ``https://<shop>.myshopify.com`` to the Shopify stand-in, as the
tests' own clients do. The command itself is unchanged."""

import os

_PORT = os.environ.get("SHOPIFY_STANDIN_PORT")

if _PORT:
    import httpx

    class _Routing(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if not request.url.host.endswith(".myshopify.com"):
                raise httpx.ConnectError(f"only the stand-in is reachable: {request.url.host}")
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=int(_PORT))
            return super().handle_request(request)

    _original_init = httpx.Client.__init__

    def _routed_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("transport", _Routing())
        _original_init(self, *args, **kwargs)

    httpx.Client.__init__ = _routed_init  # type: ignore[method-assign]
