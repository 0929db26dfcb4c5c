"""Request building and response handling shared by the async and the sync client (no I/O here).

Every verb is a function returning a :class:`Request`; a transport serialises its body with its own
JSON codec (orjson for the async client, the cheaper-to-import stdlib ``json`` for the CLI's sync
client), sends it, and hands the status, headers and body back to :func:`decode`, which returns the
parsed JSON or raises the ``kubelite.api.errors`` class the ``Status`` body names. Watch streams are
parsed line by line with :func:`watch_event`. Nothing heavy is imported here (no urllib, no codec).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from kubelite.api.errors import ApiError, from_status
from kubelite.api.resources import ResourceInfo, lookup

Resource = ResourceInfo | str
PatchType = Literal["merge", "json", "strategic", "apply"]

JSON = "application/json"
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
USER_AGENT = "kubelite/0.1.0"


class Request:
    """One HTTP request (a plain slotted class: ``@dataclass`` costs start-up time the CLI cannot spare)."""

    __slots__ = ("method", "path", "body", "headers", "stream")

    def __init__(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                 stream: bool = False) -> None:
        self.method = method
        self.path = path                    # path plus query string, relative to the server URL
        self.body = body                    # None, raw bytes, or a JSON value the transport serialises
        self.headers = headers if headers is not None else {}
        self.stream = stream                # a watch: the body is read line by line

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


class WatchEvent:
    """One event of a watch stream: ``type`` is ADDED, MODIFIED, DELETED or BOOKMARK."""

    __slots__ = ("type", "object")

    def __init__(self, type: str, object: dict[str, Any]) -> None:  # noqa: A002 - the wire names
        self.type = type
        self.object = object

    def __repr__(self) -> str:
        meta = self.object.get("metadata") or {}
        return f"WatchEvent({self.type} {meta.get('namespace', '')}/{meta.get('name', '')})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WatchEvent) and (self.type, self.object) == (other.type, other.object)


def resolve(res: Resource) -> ResourceInfo:
    """A ``ResourceInfo`` for ``res`` (names go through :func:`kubelite.api.resources.lookup`)."""
    return res if isinstance(res, ResourceInfo) else lookup(res)


Loads = Callable[[bytes], Any]
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (as ``urllib.parse.quote(safe="")``)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def query_string(params: dict[str, Any]) -> str:
    pairs = []
    for key, value in params.items():
        if value is None or value is False:
            continue
        pairs.append(f"{quote(key)}={quote('true' if value is True else str(value))}")
    return ("?" + "&".join(pairs)) if pairs else ""


def _object_namespace(info: ResourceInfo, obj: dict[str, Any] | None, namespace: str | None,
                      default_ns: str) -> str | None:
    if not info.namespaced:
        return None
    meta = (obj or {}).get("metadata") or {}
    return namespace or meta.get("namespace") or default_ns


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _json_body(obj: Any, headers: dict[str, str] | None = None) -> tuple[Any, dict[str, str]]:
    h = {"Content-Type": JSON, "Accept": JSON}
    if headers:
        h.update(headers)
    return obj, h


def get(info: ResourceInfo, name: str, namespace: str | None, default_ns: str, *,
        subresource: str | None = None, accept: str = JSON) -> Request:
    ns = _object_namespace(info, None, namespace, default_ns)
    return Request("GET", info.path(ns, name, subresource), headers={"Accept": accept})


def list_(info: ResourceInfo, namespace: str | None, *, label_selector: str | None = None,
          field_selector: str | None = None, resource_version: str | None = None, limit: int | None = None,
          continue_: str | None = None, accept: str = JSON, extra: dict[str, Any] | None = None) -> Request:
    """A list; ``namespace=None`` lists across all namespaces."""
    params: dict[str, Any] = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                              "resourceVersion": resource_version, "limit": limit, "continue": continue_ or None}
    params.update(extra or {})
    path = info.path(namespace if info.namespaced else None) + query_string(params)
    return Request("GET", path, headers={"Accept": accept})


def watch(info: ResourceInfo, namespace: str | None, *, resource_version: str | None = None,
          label_selector: str | None = None, field_selector: str | None = None,
          timeout_seconds: int | None = None, allow_bookmarks: bool = True, accept: str = JSON) -> Request:
    params: dict[str, Any] = {"allowWatchBookmarks": allow_bookmarks, "labelSelector": label_selector or None,
                              "fieldSelector": field_selector or None, "resourceVersion": resource_version,
                              "timeoutSeconds": timeout_seconds, "watch": True}
    path = info.path(namespace if info.namespaced else None) + query_string(params)
    return Request("GET", path, headers={"Accept": accept}, stream=True)


def create(info: ResourceInfo, obj: dict[str, Any], namespace: str | None, default_ns: str, *,
           field_manager: str | None = None, field_validation: str | None = None, dry_run: bool = False) -> Request:
    ns = _object_namespace(info, obj, namespace, default_ns)
    params = {"fieldManager": field_manager, "fieldValidation": field_validation, "dryRun": "All" if dry_run else None}
    body, headers = _json_body(obj)
    return Request("POST", info.path(ns) + query_string(params), body, headers)


def update(info: ResourceInfo, obj: dict[str, Any], namespace: str | None, default_ns: str, *,
           subresource: str | None = None, field_manager: str | None = None,
           field_validation: str | None = None, dry_run: bool = False) -> Request:
    ns = _object_namespace(info, obj, namespace, default_ns)
    params = {"fieldManager": field_manager, "fieldValidation": field_validation, "dryRun": "All" if dry_run else None}
    body, headers = _json_body(obj)
    return Request("PUT", info.path(ns, _name(obj), subresource) + query_string(params), body, headers)


def patch(info: ResourceInfo, name: str, body: Any, namespace: str | None, default_ns: str, *,
          patch_type: PatchType = "merge", subresource: str | None = None, field_manager: str | None = None,
          force: bool | None = None, field_validation: str | None = None, dry_run: bool = False) -> Request:
    try:
        content_type = PATCH_CONTENT_TYPES[patch_type]
    except KeyError:
        raise ValueError(f"unknown patch type {patch_type!r}; one of {', '.join(PATCH_CONTENT_TYPES)}") from None
    ns = _object_namespace(info, body if isinstance(body, dict) else None, namespace, default_ns)
    params = {"fieldManager": field_manager, "force": "true" if force else ("false" if force is False else None),
              "fieldValidation": field_validation, "dryRun": "All" if dry_run else None}
    return Request("PATCH", info.path(ns, name, subresource) + query_string(params), body,
                   {"Content-Type": content_type, "Accept": JSON})


def delete(info: ResourceInfo, name: str, namespace: str | None, default_ns: str, *,
           grace_period_seconds: int | None = None, propagation_policy: str | None = None,
           preconditions: dict[str, str] | None = None, dry_run: bool = False) -> Request:
    ns = _object_namespace(info, None, namespace, default_ns)
    opts: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace_period_seconds is not None:
        opts["gracePeriodSeconds"] = grace_period_seconds
    if propagation_policy:
        opts["propagationPolicy"] = propagation_policy
    if preconditions:
        opts["preconditions"] = preconditions
    if dry_run:
        opts["dryRun"] = ["All"]
    body, headers = _json_body(opts)
    return Request("DELETE", info.path(ns, name), body, headers)


def create_subresource(info: ResourceInfo, name: str, sub: str, body: dict[str, Any], namespace: str | None,
                       default_ns: str) -> Request:
    ns = _object_namespace(info, None, namespace, default_ns)
    data, headers = _json_body(body)
    return Request("POST", info.path(ns, name, sub), data, headers)


def raw(method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
        content_type: str = JSON, accept: str = JSON, stream: bool = False) -> Request:
    """Any request (``body`` bytes are sent as they are; other values as JSON)."""
    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = content_type
    return Request(method, path + query_string(params or {}), body, headers, stream)


def decode(status: int, content_type: str, body: bytes, request: Request, loads: Loads) -> Any:
    """The parsed body of a success; the matching :class:`ApiError` for a failure.

    A non-JSON success body (``/healthz`` "ok", pod logs) is returned as ``str``.
    """
    if 200 <= status < 300:
        if not body:
            return None
        if "json" in content_type or (not content_type and body[:1] in (b"{", b"[")):
            try:
                return loads(body)
            except ValueError:
                raise from_status(None, 500, f"the server sent malformed JSON for {request.method} {request.path}") from None
        return body.decode("utf-8", "replace")
    raise error_for(status, body, request, loads)


def error_for(status: int, body: bytes, request: Request, loads: Loads) -> ApiError:
    """The error for a failed response; kubectl's wording when the body is not a ``Status``."""
    parsed: Any = None
    if body[:1] == b"{":
        try:
            parsed = loads(body)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return from_status(parsed, status)
    text = body.decode("utf-8", "replace").strip()
    verb = {"GET": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}.get(request.method, "")
    resource = request.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    fallback = (f'an error on the server ("{text}") has prevented the request from succeeding ({verb} {resource})'
                if text else f"the server responded with the status code {status} but did not return more information"
                f" ({verb} {resource})")
    return from_status(None, status, fallback)


def watch_event(line: bytes, loads: Loads) -> WatchEvent | None:
    """Parse one line of a watch stream; ``None`` for blank lines; raises the error of an ERROR event."""
    line = line.strip()
    if not line:
        return None
    try:
        data = loads(line)
    except ValueError:
        raise from_status(None, 500, "the server sent a malformed watch event") from None
    kind = str(data.get("type") or "")
    obj = data.get("object") or {}
    if kind == "ERROR":
        raise from_status(obj, int(obj.get("code") or 500))
    return WatchEvent(kind, obj)
