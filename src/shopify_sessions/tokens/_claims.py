"""What Shopify asks an app to check of a session token, beyond ``shopifyapp``'s checks.

``shopifyapp`` checks the signature (HS256, the app's secret), ``aud``, and ``exp``/``nbf``/
``iat`` when they are present; a token without ``exp`` never expires, and a ``dest`` that
is not a shop (``https://evil.example``) reaches the app. Shopify's guidance adds: ``exp``
in the future, ``nbf`` in the past, ``iss`` and ``dest`` on the same shop, ``aud`` the
client id, ``sub`` the user. Nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from .._shop import is_valid_shop

#: Seconds of clock difference tolerated, as Node's ``decodeSessionToken`` (and
#: ``shopifyapp``'s PyJWT ``leeway``).
CLOCK_TOLERANCE = 10
#: A session token's ``dest``: the shop's URL, exactly as Shopify writes it (lower case,
#: no port, path or trailing slash); the shop names ``shopifyapp``'s exchange accepts.
_DEST = re.compile(r"https://([a-z0-9][a-z0-9-]*)\.myshopify\.com")
#: A staff user's id in ``sub``: decimal digits.
_USER_ID = re.compile(r"[0-9]{1,20}")


def session_token_problem(verified: Any, client_id: str, now: float) -> str | None:
    """Why the session token of a request ``shopifyapp`` verified must be refused anyway,
    or ``None`` when it holds what Shopify says to check; a verification without a token
    (a CORS preflight that ``shopifyapp`` answers itself) has nothing to check.

    The reason names the claim, never its value (it comes from the request).
    """
    id_token = getattr(verified, "id_token", None)
    if id_token is None:
        return None
    claims = getattr(id_token, "claims", None)
    if not isinstance(claims, dict):
        return "the session token has no claims"
    dest = claims.get("dest")
    match = _DEST.fullmatch(dest) if isinstance(dest, str) else None
    if match is None or not is_valid_shop(host := match[0].removeprefix("https://")):
        return "dest is not the URL of a shop (https://<shop>.myshopify.com)"
    if getattr(verified, "shop", None) != match[1]:
        return "the verified shop is not dest's"
    iss = claims.get("iss")
    issuer = urlsplit(iss) if isinstance(iss, str) else None
    if issuer is None or issuer.scheme != "https" or issuer.netloc != host:
        return "iss is not on dest's shop"
    if claims.get("aud") != client_id:
        return "aud is not the app's client id"
    expires = claims.get("exp")
    if expires is None:
        return "exp is missing: the token would never expire"
    for name in ("exp", "nbf", "iat"):
        if name in claims and not _is_time(claims[name]):
            return f"{name} is not a time"
    if expires + CLOCK_TOLERANCE <= now:
        return "the session token has expired"
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and value > now + CLOCK_TOLERANCE:
            return f"{name} is in the future"
        if value is not None and value > expires:
            return f"{name} is after exp"
    return None


def user_id_of(verified: Any) -> int | None:
    """The staff user's id of a verified session token (``sub``), or ``None`` when it
    names none (an online session needs it)."""
    sub = getattr(verified, "user_id", None)
    if isinstance(sub, str) and _USER_ID.fullmatch(sub):
        return int(sub)
    return None


def _is_time(value: object) -> bool:
    """Whether a claim holds seconds since the epoch (NumericDate)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
