"""Errors raised by the client: one :class:`BraidError` subclass per gRPC status code.

For ``INVALID_ARGUMENT`` the server puts a ``google.rpc.BadRequest`` in the status details (one
field violation per problem); :attr:`BraidError.violations` holds them as ``(path, reason)``.
"""

from __future__ import annotations

from typing import NamedTuple

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


class Violation(NamedTuple):
    """One problem the server found: where (e.g. ``tasks[3].depends_on[0]``) and what."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class BraidError(Exception):
    """A call to the control plane failed.

    ``code`` is the :class:`grpc.StatusCode`, ``message`` the server's message and
    ``violations`` the decoded ``google.rpc.BadRequest`` field violations (may be empty).
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        violations: list[Violation] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.violations: list[Violation] = list(violations or [])

    def __str__(self) -> str:
        name = self.code.name if isinstance(self.code, grpc.StatusCode) else str(self.code)
        text = f"{name}: {self.message}"
        # The server's message for an invalid definition already lists the problems.
        missing = [v for v in self.violations if str(v) not in self.message]
        if missing:
            text += "".join(f"\n  {v}" for v in missing)
        return text


class RpcCancelledError(BraidError):
    code = grpc.StatusCode.CANCELLED


class UnknownError(BraidError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgumentError(BraidError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(BraidError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(BraidError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(BraidError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(BraidError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(BraidError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(BraidError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(BraidError):
    code = grpc.StatusCode.ABORTED


class OutOfRangeError(BraidError):
    code = grpc.StatusCode.OUT_OF_RANGE


class UnimplementedError(BraidError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(BraidError):
    code = grpc.StatusCode.INTERNAL


class UnavailableError(BraidError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLossError(BraidError):
    code = grpc.StatusCode.DATA_LOSS


class UnauthenticatedError(BraidError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[BraidError]] = {
    cls.code: cls
    for cls in (
        RpcCancelledError,
        UnknownError,
        InvalidArgumentError,
        DeadlineExceededError,
        NotFoundError,
        AlreadyExistsError,
        PermissionDeniedError,
        ResourceExhaustedError,
        FailedPreconditionError,
        AbortedError,
        OutOfRangeError,
        UnimplementedError,
        InternalError,
        UnavailableError,
        DataLossError,
        UnauthenticatedError,
    )
}


def _violations(trailing: object) -> list[Violation]:
    """Field violations from the ``grpc-status-details-bin`` trailer, if any."""
    raw = None
    for key, value in trailing or ():
        if key == _DETAILS_KEY:
            raw = value
            break
    if not raw:
        return []
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except Exception:  # noqa: BLE001 - undecodable details are ignored, not fatal
        return []
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend(Violation(v.field, v.description) for v in bad.field_violations)
    return found


def error_for(code: grpc.StatusCode, message: str, violations: list[Violation] | None = None) -> BraidError:
    cls = _BY_CODE.get(code, BraidError)
    return cls(message, code=code, violations=violations)


def from_rpc_error(error: grpc.RpcError) -> BraidError:
    """The :class:`BraidError` for a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    return error_for(code, details or "", _violations(trailing))
