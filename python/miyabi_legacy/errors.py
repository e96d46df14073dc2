"""Classifies boto3 failures into the bridge's JSON-RPC error codes (DESIGN §10).

Both bridge transports use it: the JSON-RPC server puts the result on the wire, and the
in-process transport calls it on the exception it caught, so the two cannot disagree.
"""

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

AWS_ERROR = -32000
AUTH_ERROR = -32001
RATE_LIMITED = -32002
TIMED_OUT = -32003
INTERNAL_ERROR = -32603

THROTTLING_CODES = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "RequestLimitExceeded", "SlowDown", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceededException",
}
AUTH_CODES = {
    "AuthFailure", "UnauthorizedOperation", "AccessDenied", "AccessDeniedException",
    "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "InvalidAccessKeyId", "OptInRequired",
}


def _call_of(exc):
    """(client, operation name) of the botocore call that raised `exc`, found in the traceback:
    a ClientError names the operation but not the service or Region, and a connection error
    names neither."""
    tb = exc.__traceback__
    client, operation = None, None
    while tb is not None:
        frame_locals = tb.tb_frame.f_locals
        candidate = frame_locals.get("self")
        if hasattr(candidate, "meta") and hasattr(candidate.meta, "service_model"):
            client = candidate
            operation = frame_locals.get("operation_name", operation)
        tb = tb.tb_next
    return client, operation


def classify(exc):
    """(code, message, data) for an exception raised by a phase.

    data names the AWS error code, service, operation, Region and whether a retry may help.
    """
    client, operation = _call_of(exc)
    data = {
        "aws_error_code": type(exc).__name__,
        "service": client.meta.service_model.endpoint_prefix if client else None,
        "operation": getattr(exc, "operation_name", None) or operation,
        "region": client.meta.region_name if client else None,
        "retryable": False,
        "exception": type(exc).__name__,
    }
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        aws_code = error.get("Code", "Unknown")
        data["aws_error_code"] = aws_code
        if aws_code in AUTH_CODES:
            return AUTH_ERROR, str(exc), data
        if aws_code in THROTTLING_CODES:
            data["retryable"] = True
            return RATE_LIMITED, str(exc), data
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        data["retryable"] = status >= 500
        return AWS_ERROR, str(exc), data
    if isinstance(exc, NoCredentialsError):
        return AUTH_ERROR, str(exc), data
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        data["retryable"] = True
        return TIMED_OUT, str(exc), data
    if type(exc).__module__.startswith("botocore"):
        # Connection refused or reset, a closed endpoint: we could not ask.
        data["retryable"] = True
        return AWS_ERROR, str(exc), data
    return INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", data
