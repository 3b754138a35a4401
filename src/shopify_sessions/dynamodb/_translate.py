"""DynamoDB failures, translated into this package's typed errors.

botocore's messages name the error's code and DynamoDB's message, which names attributes
and never their values; a failure of the request's own parameters (which could quote a
value) is reported by its class alone. So no token reaches a message.
"""

from __future__ import annotations

from botocore import exceptions

from .._errors import (
    MissingSessionTableError,
    SessionStorageError,
    SessionTableSchemaError,
    StorageAccessDeniedError,
    StorageConflictError,
    StorageOperationError,
    StorageUnavailableError,
)

#: What a botocore call can fail with, besides this package's own errors.
FAILURES = (exceptions.BotoCoreError, exceptions.ClientError, OSError)

#: A conditional write whose condition did not hold: an answer, not a failure.
CONDITION_FAILED = "ConditionalCheckFailedException"
#: ``CreateTable`` of a table that exists.
TABLE_EXISTS = "ResourceInUseException"

#: DynamoDB refusing work for want of capacity; botocore retried it before giving up.
_THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
#: DynamoDB failing on its side; the next try may well succeed.
_SERVER = frozenset({"InternalServerError", "ServiceUnavailable", "InternalFailure"})
#: The credentials, or what they may do.
_REFUSED = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    }
)
_CONFLICT = frozenset({"TransactionConflictException"})
_NO_CREDENTIALS = (
    exceptions.NoCredentialsError,
    exceptions.PartialCredentialsError,
    exceptions.CredentialRetrievalError,
    exceptions.NoAuthTokenError,
)
_UNREACHABLE = (exceptions.ConnectionError, exceptions.HTTPClientError, OSError)


def error_code(error: BaseException) -> str | None:
    """The DynamoDB error code of a failed call (``None`` if it got no answer)."""
    if isinstance(error, exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def failure(operation: str, table: str, error: BaseException) -> SessionStorageError:
    """The typed error of ``operation`` on ``table`` failing with ``error``."""
    where = f"DynamoDB table {table}"
    code = error_code(error)
    if code is not None:
        reason = _client_reason(error, code)
        if code == "ResourceNotFoundException":
            return MissingSessionTableError(
                f"{operation}: {where} does not exist: create it with "
                "create_table() or `shopify-sessions init --url dynamodb://<table>?region=...`"
            )
        if code == "ValidationException" and "specified index" in reason:
            return SessionTableSchemaError(table, [reason])
        if code in _THROTTLED:
            return StorageUnavailableError(
                f"{operation} on {where}: DynamoDB throttled it, and it was tried again "
                f"until botocore gave up: {reason}"
            )
        if code in _SERVER:
            return StorageUnavailableError(f"{operation} on {where}: DynamoDB failed: {reason}")
        if code in _REFUSED:
            return StorageAccessDeniedError(
                f"{operation} on {where}: DynamoDB refused the credentials: {reason}"
            )
        if code in _CONFLICT:
            return StorageConflictError(f"{operation} on {where}: {reason}")
        return StorageOperationError(f"{operation} on {where} failed: {reason}")
    if isinstance(error, _NO_CREDENTIALS):
        return StorageAccessDeniedError(
            f"{operation} on {where}: no AWS credentials: {_reason(error)} (boto3 looks in "
            "the environment, ~/.aws, and the role of the host or Lambda function)"
        )
    if isinstance(error, exceptions.ParamValidationError):
        return StorageOperationError(
            f"{operation} on {where}: botocore refused the request's parameters"
        )
    if isinstance(error, _UNREACHABLE):
        return StorageUnavailableError(
            f"{operation} on {where}: DynamoDB is unreachable: {_reason(error)}"
        )
    return StorageOperationError(f"{operation} on {where} failed: {_reason(error)}")


def _client_reason(error: BaseException, code: str) -> str:
    message = str(getattr(error, "response", {}).get("Error", {}).get("Message") or "").strip()
    return f"{code}: {message}" if message else code


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text}"
