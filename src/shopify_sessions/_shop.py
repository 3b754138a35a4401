"""Shop domain validation and session ids, as in ``@shopify/shopify-api``."""

from __future__ import annotations

import re

from ._errors import InvalidShopError

__all__ = [
    "is_valid_shop",
    "offline_session_id",
    "online_session_id",
    "sanitize_shop",
    "shop_domain",
]

_MYSHOPIFY = ".myshopify.com"

_DOMAINS = r"myshopify\.com|shopify\.com|myshopify\.io|shop\.dev"
_SHOP_NAME = r"[a-zA-Z0-9][a-zA-Z0-9_-]*"
# fullmatch() is used because Python's "$" also matches before a trailing newline.
_SHOP_URL = re.compile(rf"{_SHOP_NAME}\.(?:{_DOMAINS})/*")
_SHOP_ADMIN_URL = re.compile(rf"admin\.({_DOMAINS})/store/({_SHOP_NAME})")


def sanitize_shop(shop: str) -> str:
    """Validate a shop domain and return it in the ``<name>.myshopify.com`` form.

    Accepts ``<name>.<domain>`` (optionally followed by slashes, which are kept)
    for the domains ``myshopify.com``, ``shopify.com``, ``myshopify.io`` and
    ``shop.dev``, and the admin URL ``admin.shopify.com/store/<name>``, which
    becomes ``<name>.myshopify.com``. No protocol is accepted.

    Args:
        shop: The shop domain, e.g. from a request's ``shop`` parameter.

    Returns:
        The validated shop domain.

    Raises:
        InvalidShopError: ``shop`` is not a valid shop domain.
    """
    if not isinstance(shop, str):
        raise InvalidShopError(f"shop must be a str, got {type(shop).__name__}")
    candidate = _admin_url_to_legacy_url(shop)
    if not _SHOP_URL.fullmatch(candidate):
        raise InvalidShopError(f"invalid shop domain: {shop!r}")
    return candidate


def shop_domain(shop: str) -> str:
    """``my-shop`` (as ``shopifyapp`` names shops) or ``my-shop.myshopify.com``, as a domain.

    Raises:
        InvalidShopError: it is neither.
    """
    if isinstance(shop, str) and shop and "." not in shop:
        shop += _MYSHOPIFY
    return sanitize_shop(shop)


def is_valid_shop(shop: str) -> bool:
    """Whether :func:`sanitize_shop` accepts ``shop``."""
    try:
        sanitize_shop(shop)
    except InvalidShopError:
        return False
    return True


def offline_session_id(shop: str) -> str:
    """The id of a shop's offline session: ``offline_<shop>``.

    Raises:
        InvalidShopError: ``shop`` is not a valid shop domain.
    """
    return f"offline_{sanitize_shop(shop)}"


def online_session_id(shop: str, user_id: int | str) -> str:
    """The id of an embedded app's online session: ``<shop>_<user_id>``.

    Raises:
        InvalidShopError: ``shop`` is not a valid shop domain.
    """
    return f"{sanitize_shop(shop)}_{user_id}"


def _admin_url_to_legacy_url(shop: str) -> str:
    match = _SHOP_ADMIN_URL.fullmatch(shop)
    if match is None:
        return shop
    domain, name = match.groups()
    if domain == "shop.dev":
        # Faithful to JS, whose own default pattern then rejects this form.
        return f"{name}.dev-api.shop.dev"
    return f"{name}.myshopify.com"
