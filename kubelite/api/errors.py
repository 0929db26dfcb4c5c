"""Errors of the whole project, and Kubernetes API errors built from and into ``Status`` objects.

The tree::

    KubeliteError                      root of every error kubelite raises on purpose
    ├── ApiError                       a Kubernetes ``Status`` failure; ``code`` and ``reason`` as on the wire
    │   ├── BadRequest            400  BadRequest
    │   ├── Unauthorized          401  Unauthorized
    │   ├── Forbidden             403  Forbidden
    │   ├── NotFound              404  NotFound
    │   ├── MethodNotAllowed      405  MethodNotAllowed
    │   ├── NotAcceptable         406  NotAcceptable
    │   ├── AlreadyExists         409  AlreadyExists
    │   ├── Conflict              409  Conflict
    │   ├── Gone                  410  Expired   (watch/list from a compacted resourceVersion)
    │   ├── RequestEntityTooLarge 413  RequestEntityTooLarge
    │   ├── UnsupportedMediaType  415  UnsupportedMediaType
    │   ├── Invalid               422  Invalid   (``details.causes`` name every wrong field)
    │   ├── TooManyRequests       429  TooManyRequests
    │   ├── InternalError         500  InternalError
    │   ├── ServiceUnavailable    503  ServiceUnavailable
    │   └── Timeout               504  Timeout
    └── (other subtrees live beside their code, e.g. the runtime's ``RuntimeError_`` tree)

Server and client share these classes: the apiserver raises them and renders ``to_status()``; the
client turns a ``Status`` body back into the same class with :func:`from_status`.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict


class KubeliteError(Exception):
    """Root of every error kubelite raises on purpose."""


class StatusCause(TypedDict, total=False):
    reason: str
    message: str
    field: str


class ApiError(KubeliteError):
    """A Kubernetes API failure, carrying the ``Status`` object that describes it."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = ""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: int | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.status_code = code if code is not None else type(self).code
        self.status_reason = reason if reason is not None else type(self).reason

    def to_status(self) -> dict[str, Any]:
        """The ``metav1.Status`` JSON object for this error."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.status_reason,
            "code": self.status_code,
        }
        if self.details:
            status["details"] = self.details
        return status

    @property
    def causes(self) -> list[StatusCause]:
        return list(self.details.get("causes", []))


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(ApiError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class Gone(ApiError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(ApiError):
    code, reason = 504, "Timeout"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable,
                AlreadyExists, Conflict, Gone, RequestEntityTooLarge, UnsupportedMediaType, Invalid,
                TooManyRequests, InternalError, ServiceUnavailable, Timeout)
}
_BY_REASON["Gone"] = Gone
_BY_CODE: dict[int, type[ApiError]] = {}
for _cls in _BY_REASON.values():
    _BY_CODE.setdefault(_cls.code, _cls)
_BY_CODE[409] = Conflict


def from_status(status: dict[str, Any] | None, http_code: int, fallback_message: str = "") -> ApiError:
    """Rebuild the error class for a ``Status`` body (or a bare HTTP code when there is no body)."""
    status = status if isinstance(status, dict) else {}
    reason = str(status.get("reason") or "")
    code = int(status.get("code") or http_code)
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or ApiError
    message = str(status.get("message") or fallback_message or f"the server responded with code {code}")
    return cls(message, details=status.get("details") or None, code=code, reason=reason or cls.reason)


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> NotFound:
    """``pods "x" not found`` / ``deployments.apps "x" not found``."""
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return NotFound(f'{_qualified(resource, group)} "{name}" not found', details=details)


def already_exists(resource: str, name: str, group: str = "") -> AlreadyExists:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return AlreadyExists(f'{_qualified(resource, group)} "{name}" already exists', details=details)


def conflict(resource: str, name: str, group: str = "", why: str = "") -> Conflict:
    """Kubernetes' wording for a stale resourceVersion (or ``why`` for other conflicts)."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return Conflict(f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    details=details)


def invalid(kind: str, name: str, causes: list[StatusCause], group: str = "") -> Invalid:
    """``Pod "x" is invalid: spec.containers[0].image: Required value`` (several causes in brackets)."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c.get("message", "") for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    kind_q = f"{kind}.{group}" if group else kind
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return Invalid(f'{kind_q} "{name}" is invalid: {summary}', details=details)


def required(field: str) -> StatusCause:
    return {"reason": "FieldValueRequired", "message": "Required value", "field": field}


def invalid_value(field: str, value: Any, why: str) -> StatusCause:
    shown = f'"{value}"' if isinstance(value, str) else repr(value) if value is not None else "null"
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {shown}: {why}", "field": field}


def forbidden_field(field: str, why: str) -> StatusCause:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {why}", "field": field}


def duplicate(field: str, value: Any) -> StatusCause:
    return {"reason": "FieldValueDuplicate", "message": f'Duplicate value: "{value}"', "field": field}


def not_supported(field: str, value: Any, supported: list[str]) -> StatusCause:
    opts = ", ".join(f'"{s}"' for s in supported)
    return {"reason": "FieldValueNotSupported", "message": f'Unsupported value: "{value}": supported values: {opts}',
            "field": field}
