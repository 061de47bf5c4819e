"""Kubernetes ``Status`` objects and the error that carries one.

Every failure the API reports is an :class:`ApiError`: the HTTP code, the
``reason`` clients switch on (NotFound, AlreadyExists, Conflict, Invalid,
BadRequest, Expired, ...), a message that reads like the apiserver's, and for
invalid objects the causes with their field paths.  Handlers raise; the
server turns it into the response.
"""

from __future__ import annotations

from typing import Any

from nodeagent.objects.codec import DecodeError, InvalidError
from nodeagent.objects.kinds import Resource

__all__ = ["ApiError", "status_object"]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, *,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        return status_object(self.code, self.reason, self.message, self.details)

    # --- the ones handlers raise -----------------------------------------------------------

    @classmethod
    def not_found(cls, res: Resource | str, name: str) -> ApiError:
        plural, group, _kind = _names(res)
        what = f"{plural}.{group}" if group else plural
        return cls(404, "NotFound", f'{what} "{name}" not found',
                   details={"name": name, "group": group, "kind": plural})

    @classmethod
    def already_exists(cls, res: Resource, name: str) -> ApiError:
        plural, group, _ = _names(res)
        what = f"{plural}.{group}" if group else plural
        return cls(409, "AlreadyExists", f'{what} "{name}" already exists',
                   details={"name": name, "group": group, "kind": plural})

    @classmethod
    def conflict(cls, res: Resource, name: str) -> ApiError:
        plural, group, _ = _names(res)
        what = f"{plural}.{group}" if group else plural
        return cls(409, "Conflict",
                   f'Operation cannot be fulfilled on {what} "{name}": the object has been '
                   "modified; please apply your changes to the latest version and try again",
                   details={"name": name, "group": group, "kind": plural})

    @classmethod
    def too_many(cls, message: str, retry_after_s: int = 1) -> ApiError:
        """429: the answer carries Retry-After (server.error_response) and the details'
        retryAfterSeconds, which client-go waits for before it tries again."""
        return cls(429, "TooManyRequests", message,
                   details={"retryAfterSeconds": retry_after_s})

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def from_invalid(cls, res: Resource, exc: InvalidError) -> ApiError:
        name = exc.name
        causes = [{"reason": e.reason, "message": e.body(), "field": e.path} for e in exc.errors]
        _plural, group, kind = _names(res)
        return cls(422, "Invalid", f'{kind} "{name}" is invalid: ' + _join(exc),
                   details={"name": name, "group": group, "kind": kind, "causes": causes})

    @classmethod
    def from_decode(cls, exc: DecodeError) -> ApiError:
        return cls(400, "BadRequest", exc.message)


def _join(exc: InvalidError) -> str:
    parts = ", ".join(str(e) for e in exc.errors)
    return f"[{parts}]" if len(exc.errors) > 1 else parts


def _names(res: Resource | str) -> tuple[str, str, str]:
    if isinstance(res, str):
        return res, "", res
    return res.plural, res.group, res.kind


def status_object(code: int, reason: str, message: str,
                  details: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        obj["details"] = details
    return obj
