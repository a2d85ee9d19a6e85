"""What an S3 failure means: botocore's ClientError codes and statuses (not found, a lost
conditional write) and which failures are worth the transport's own retry."""

from __future__ import annotations


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in ("404", "NoSuchKey", "NotFound") or (
        http_status(exc) == 404 and error_code(exc) != "NoSuchBucket")


def is_precondition_failed(exc: BaseException) -> bool:
    # 409 ConditionalRequestConflict: S3 lost a race between two conditional writers.
    return error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict") or \
        http_status(exc) in (412, 409)


def is_transient(exc: BaseException) -> bool:
    """Errors worth our own retry: connection trouble, timeouts, 5xx, a broken body."""
    import botocore.exceptions  # loaded already: only botocore's calls raise these
    import urllib3.exceptions

    # ConnectionError is not an HTTPClientError; ResponseStreamingError is botocore >= 1.29.
    names = ("HTTPClientError", "ConnectionError", "ResponseStreamingError", "IncompleteReadError")
    kinds = tuple(getattr(botocore.exceptions, n) for n in names if hasattr(botocore.exceptions, n))
    if isinstance(exc, kinds + (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        return http_status(exc) >= 500 or error_code(exc) in (
            "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable")
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)
