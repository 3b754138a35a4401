"""httpx transports that send ``https://<shop>.myshopify.com/...`` to the fake."""

from __future__ import annotations

from typing import Any

try:
    import httpx
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "FakeShopify's HTTP clients need httpx: pip install 'shopify-sessions[testing]'"
    ) from error

SHOPIFY_DOMAIN = ".myshopify.com"


def sync_client(url: str, options: dict[str, Any]) -> httpx.Client:
    """An ``httpx.Client`` routed to the fake at ``url`` (a 10 s timeout by default)."""
    return httpx.Client(transport=RoutingTransport(url), **{"timeout": 10.0, **options})


def async_client(url: str, options: dict[str, Any]) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` routed to the fake at ``url`` (a 10 s timeout by default)."""
    return httpx.AsyncClient(transport=AsyncRoutingTransport(url), **{"timeout": 10.0, **options})


def route(request: httpx.Request, url: httpx.URL) -> None:
    """Point ``request`` at the fake at ``url``; its Host header keeps the shop."""
    if not request.url.host.endswith(SHOPIFY_DOMAIN):
        raise httpx.ConnectError(
            f"only the fake Shopify is reachable from this client, not {request.url.host}",
            request=request,
        )
    request.url = request.url.copy_with(scheme=url.scheme, host=url.host, port=url.port)


class RoutingTransport(httpx.HTTPTransport):
    """The sync transport of :meth:`FakeShopify.http_client`."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = httpx.URL(url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        route(request, self._url)
        return super().handle_request(request)


class AsyncRoutingTransport(httpx.AsyncHTTPTransport):
    """The asyncio transport of :meth:`FakeShopify.async_http_client`."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = httpx.URL(url)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route(request, self._url)
        return await super().handle_async_request(request)
