"""Tokens kept out of botocore's debug logs.

At DEBUG, botocore logs every request's parameters and every response's body
(``botocore.endpoint``: "Making request ... with params", ``botocore.parsers``:
"Response body"), each signed request's headers ("Sending http request"), and what it
signs (``botocore.auth``: the canonical request, the signature), which hold the signature
and, with temporary credentials (a Lambda function's role), the
``X-Amz-Security-Token``. An app that turns every logger to DEBUG would then log the
sessions' tokens and an AWS secret. A filter on those three loggers (aiobotocore logs
through the same ones) replaces the values of ``accessToken`` and ``refreshToken`` (and of
the condition values of the same names that ``replace_session`` sends), the signature and
the security token with ``<redacted>`` before any handler sees the record. It is installed
once per process by the first DynamoDB storage, and redacts the same for any other boto3
code of the process.
"""

from __future__ import annotations

import logging
import re
import threading

#: The loggers that log bodies and headers (aiobotocore reuses botocore's).
LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.auth")

_TOKEN_VALUE = re.compile(
    r'("(?::?)(?:accessToken|refreshToken)"\s*:\s*\{\s*"S"\s*:\s*")(.*?)("\s*\})'
)
_HEADER_VALUE = re.compile(
    r"""(['"](?:X-Amz-Security-Token|Authorization)['"]\s*:\s*b?['"])([^'"]*)(['"])""",
    re.IGNORECASE,
)
#: A canonical request's security token header line, and a signature logged alone.
_SIGNED_VALUE = re.compile(r"(^x-amz-security-token:|\ASignature:\n)(.*)()$", re.MULTILINE)
_REDACTED = r"\1<redacted>\3"


def redacted(text: str) -> str:
    """``text`` with token values, signatures and security tokens replaced."""
    if "Token" in text or "Authorization" in text:
        text = _TOKEN_VALUE.sub(_REDACTED, text)
        text = _HEADER_VALUE.sub(_REDACTED, text)
    if "x-amz-security-token:" in text or text.startswith("Signature:"):
        text = _SIGNED_VALUE.sub(_REDACTED, text)
    return text


class RedactTokens(logging.Filter):
    """Rewrites a record's message without the secrets it would show."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record its own handler would fail to format: leave it be
            return True
        clean = redacted(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_installed = threading.Lock()
_FILTER = RedactTokens()


def install() -> None:
    """Put the filter on botocore's body-logging loggers (once)."""
    with _installed:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
