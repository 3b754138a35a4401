"""What the framework integrations share, with no framework: ``shopifyapp``'s request input,
the verification each kind of request gets, and the answer each failure gets.

Each integration (``fastapi``, ``flask``, ``django``) turns its request into
:func:`request_input`, and an :class:`Answer` into its response; nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shopify_app import RequestInput, ResultWithExchangeableIdToken, ShopifyApp

from ._errors import (
    LockTimeoutError,
    ReauthorizationRequiredError,
    StorageUnavailableError,
    TokenExchangeError,
    TokenRefreshError,
)

#: The requests whose session token can be exchanged for an offline token.
RequestKind = Literal["app_home", "admin_extension", "pos_extension"]
#: App Home's page that fetches a fresh session token (``shopifyapp`` renders it).
DEFAULT_PATCH_ID_TOKEN_PATH = "/auth/patch-id-token"
#: Seconds a client is asked to wait before trying again after a 503.
RETRY_AFTER = "1"


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
    """``shopifyapp``'s verification of a request of ``kind``."""
    if kind == "app_home":
        return app.verify_app_home_req(request, app_home_patch_id_token_path=patch_id_token_path)
    if kind == "admin_extension":
        return app.verify_admin_ui_ext_req(request)
    if kind == "pos_extension":
        return app.verify_pos_ui_ext_req(request)
    raise ValueError(f"no verification for requests of kind {kind!r}")


def failure_answer(error: Exception, verified: ResultWithExchangeableIdToken) -> Answer | None:
    """The answer to a request whose offline session could not be had, or ``None`` for an
    error the framework should answer (500) and log as it does any other.

    - the session token was refused: ``shopifyapp``'s answer, which makes App Bridge
      fetch a new one (a redirect to the patch page, or a 401 it retries);
    - Shopify, the network, the session's lock or the database failed for a while: 503.
    """
    if isinstance(error, TokenExchangeError) and error.response is not None:
        return Answer.of(error.response)
    if isinstance(error, ReauthorizationRequiredError) and verified.invalid_token_response:
        return Answer.of(verified.invalid_token_response)
    if isinstance(error, (TokenExchangeError, TokenRefreshError, LockTimeoutError)):
        return Answer(503, "Service Unavailable", {"Retry-After": RETRY_AFTER})
    if isinstance(error, StorageUnavailableError):
        return Answer(503, "Service Unavailable", {"Retry-After": RETRY_AFTER})
    return None
