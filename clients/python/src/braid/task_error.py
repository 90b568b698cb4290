"""`TaskError` and `FatalError`: how a handler says an attempt failed and whether to retry it."""

from __future__ import annotations

import traceback
from typing import Any

from braid import _pb
from braid._convert import dumps

#: Most characters of a traceback kept in an error's details.
_TRACEBACK_LIMIT = 8_000


class TaskError(Exception):
    """A failed attempt, reported to the server as ``TaskResult.error``.

    ``type`` is a short machine-readable kind (default ``"error"``); ``retryable=False`` ends the
    task at once, whatever attempts remain; ``details`` is any JSON-able value kept with the
    error. Any other exception a handler raises is reported as a retryable error whose type is
    the exception's class name.
    """

    def __init__(self, message: str, *, type: str = "error", retryable: bool = True, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.retryable = retryable
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} ({self.type}, {'retryable' if self.retryable else 'fatal'})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, type={self.type!r}, retryable={self.retryable!r})"

    def to_proto(self) -> _pb.common.TaskError:
        details = ""
        if self.details is not None:
            try:
                details = dumps(self.details)
            except (TypeError, ValueError):
                details = dumps({"unserializable_details": repr(self.details)})
        return _pb.common.TaskError(
            message=self.message, type=self.type, retryable=self.retryable, details_json=details
        )

    @classmethod
    def from_exception(cls, error: BaseException) -> TaskError:
        """The error reported for an exception a handler raised."""
        if isinstance(error, TaskError):
            return error
        message = str(error) or type(error).__name__
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        seen = {id(error)}
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            message += f": {cause}"
            cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
        tb = "".join(traceback.format_exception(error))
        if len(tb) > _TRACEBACK_LIMIT:
            tb = "..." + tb[-_TRACEBACK_LIMIT:]
        return cls(message, type=type(error).__name__, retryable=True, details={"traceback": tb})


class FatalError(TaskError):
    """A failure that is not retried: the task fails (and is dead-lettered) at once."""

    def __init__(self, message: str, *, type: str = "error", details: Any = None) -> None:
        super().__init__(message, type=type, retryable=False, details=details)
