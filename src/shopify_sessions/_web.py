"""What the framework integrations share, with no framework: ``shopifyapp``'s request input,
the verification each kind of request gets, and the answer each failure gets.

Each integration (``fastapi``, ``flask``, ``django``) turns its request into
:func:`request_input`, and an :class:`Answer` into its response; nothing else.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from shopify_app import LogWithReq, RequestInput, Res, ResultWithExchangeableIdToken, ShopifyApp

from ._errors import (
    LockTimeoutError,
    ReauthorizationRequiredError,
    StorageUnavailableError,
    TokenExchangeError,
    TokenRefreshError,
)
from ._shop import is_valid_shop
from .tokens._base import SERVER_ERROR
from .tokens._claims import session_token_problem

logger = logging.getLogger("shopify_sessions")

#: The requests whose session token can be exchanged for an offline token.
RequestKind = Literal["app_home", "admin_extension", "pos_extension"]
#: App Home's page that fetches a fresh session token (``shopifyapp`` renders it).
DEFAULT_PATCH_ID_TOKEN_PATH = "/auth/patch-id-token"
#: Seconds a client is asked to wait before trying again after a 503.
RETRY_AFTER = "1"
#: What a request gets when Shopify, the network, a lock or the database failed for a while.
UNAVAILABLE_STATUS = 503
#: The codes of an exchange that Shopify or the network failed (``TokenExchangeError``).
_UNAVAILABLE_EXCHANGES = frozenset({"network_error", SERVER_ERROR})


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP response, framework-free (``shopifyapp``'s ``Res`` has the same fields)."""

    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, response: Any) -> Answer:
        """``shopifyapp``'s ``Res`` (or a ``WebhookResponse``) as an answer."""
        return cls(response.status, response.body or "", dict(response.headers))


def request_input(
    method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes | str
) -> RequestInput:
    """A request as ``shopifyapp``'s verifications take it.

    A body that is not UTF-8 is decoded with replacement characters: its HMAC then no
    longer matches, and the request is refused as unsigned.
    """
    text = body if isinstance(body, str) else body.decode("utf-8", errors="replace")
    return {"method": method, "headers": dict(headers), "url": url, "body": text}


def verify(
    app: ShopifyApp, kind: RequestKind, request: RequestInput, patch_id_token_path: str
) -> ResultWithExchangeableIdToken:
    """``shopifyapp``'s verification of a request of ``kind``, and what Shopify asks of a
    session token beyond it (``dest`` a shop's URL, ``iss`` on its shop, ``exp`` present,
    ``nbf`` and ``iat`` not in the future, ``aud`` the app's client id): a token that
    fails those is refused as ``shopifyapp`` refuses an invalid one, with its
    ``invalid_token_response`` (a redirect to the patch ID token page for a page, a 401
    that App Bridge retries for a fetch)."""
    if kind == "app_home":
        verified = app.verify_app_home_req(
            request, app_home_patch_id_token_path=patch_id_token_path
        )
    elif kind == "admin_extension":
        verified = app.verify_admin_ui_ext_req(request)
    elif kind == "pos_extension":
        verified = app.verify_pos_ui_ext_req(request)
    else:
        raise ValueError(f"no verification for requests of kind {kind!r}")
    if not verified.ok:
        return verified
    problem = session_token_problem(verified, app.config["client_id"], time.time())
    if problem is None:
        return verified
    logger.warning("session token refused: %s", problem)
    # shopifyapp gives every verification that succeeds its answer to an invalid token.
    invalid = verified.invalid_token_response or Res(
        status=401, body="Unauthorized", headers={"X-Shopify-Retry-Invalid-Session-Request": "1"}
    )
    return dataclasses.replace(
        verified,
        ok=False,
        shop=None,
        user_id=None,
        id_token=None,
        invalid_token_response=None,
        response=invalid,
        log=LogWithReq(
            code="invalid_id_token",
            detail=f"ID token refused: {problem}. Respond with the provided response.",
            req=verified.log.req,
        ),
    )


def refusal(verified: ResultWithExchangeableIdToken) -> Answer | None:
    """The answer to a request that gets no session, or ``None``: ``shopifyapp``'s answer
    to a request it did not verify (or that :func:`verify` refused), and to an admin
    extension's CORS preflight, which it answers itself."""
    if not verified.ok or verified.id_token is None:
        return Answer.of(verified.response)
    return None


def failure_answer(error: Exception, verified: ResultWithExchangeableIdToken) -> Answer | None:
    """The answer to a request whose session could not be had, or ``None`` for an error
    the framework should answer (500) and log as it does any other.

    - Shopify, the network, the session's lock or the database failed for a while
      (during a refresh or an exchange): 503 with ``Retry-After``;
    - the session token or the exchange was refused: ``shopifyapp``'s answer (for a
      refused session token, the one that makes App Bridge fetch a new one).
    """
    if isinstance(error, TokenExchangeError):
        if error.code not in _UNAVAILABLE_EXCHANGES and error.response is not None:
            return Answer.of(error.response)
        return unavailable()
    if isinstance(error, ReauthorizationRequiredError) and verified.invalid_token_response:
        return Answer.of(verified.invalid_token_response)
    if isinstance(error, (TokenRefreshError, LockTimeoutError, StorageUnavailableError)):
        return unavailable()
    return None


def unavailable() -> Answer:
    """503 with ``Retry-After``: try again in a moment."""
    return Answer(UNAVAILABLE_STATUS, "Service Unavailable", {"Retry-After": RETRY_AFTER})


def patch_id_token_answer(app: ShopifyApp, request: RequestInput) -> Answer:
    """App Home's patch ID token page (``shopifyapp`` renders it), for a ``shop`` that is
    a shop's domain only: ``shopifyapp`` puts the parameter in the page's
    ``Content-Security-Policy`` (``frame-ancestors``) as it comes, so anything else is
    refused with 400 before it can name an origin that may frame the app."""
    query = parse_qs(urlsplit(request["url"]).query)
    if not all(_is_shop_domain(shop) for shop in query.get("shop", [])):
        return Answer(400, "Bad Request")
    return Answer.of(app.app_home_patch_id_token(request).response)


def _is_shop_domain(shop: str) -> bool:
    """Whether ``shop`` is a shop's bare domain (``my-shop.myshopify.com``): no scheme,
    path or trailing slash, which :func:`~shopify_sessions.sanitize_shop` would keep."""
    return "/" not in shop and is_valid_shop(shop)
