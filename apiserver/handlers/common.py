"""What every handler shares: the app state, request bodies, query parameters, JSON/Status replies.

Body rules (as kube-apiserver): more than 3 MiB → 413; a Content-Type the verb does not accept →
415; a body that is not JSON/YAML or not an object → 400. Every failure leaves as a ``Status``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from apiserver.objects import Objects
from apiserver.registry import fieldvalidation
from apiserver.storage import Store
from apiserver.watchcache import WatchCache
from kubelite.api import codec, errors, protobuf
from kubelite.api.resources import UnknownResource, for_kind

logger = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024
BODY_TYPES = ("application/json", "application/yaml")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _YamlLoader = yaml.SafeLoader


@dataclass
class Settings:
    """Knobs of the running server (from flags)."""

    etcd_servers: list[str]
    etcd_prefix: str = "/registry"
    bind_address: str = "127.0.0.1"
    port: int = 6443
    bookmark_interval: float = 60.0
    compaction_interval: float = 300.0
    watch_window: int = 20000
    shutdown_timeout: float = 5.0
    workers: int = 1
    reuse_port: bool = False
    lean_http: bool = True


@dataclass
class ApiState:
    """Everything the handlers need, stored on the app under :data:`STATE`."""

    settings: Settings
    store: Store
    cache: WatchCache
    objects: Objects
    ready: bool = False
    stopping: bool = False
    watch_tasks: set[Any] = field(default_factory=set)


STATE = web.AppKey("kubelite_api_state", ApiState)


def state(request: web.Request) -> ApiState:
    return request.app[STATE]


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    """``obj`` as a JSON reply (``bytes``: JSON encoded already)."""
    resp = web.Response(body=obj if isinstance(obj, bytes) else codec.dumps(obj), status=status,
                        content_type="application/json")
    for w in warnings or []:
        resp.headers.add("Warning", fieldvalidation.warning_header(w))
    return resp


def field_manager(request: web.Request) -> str:
    """The request's field manager: ``fieldManager``, else the User-Agent up to its first ``/``
    (Kubernetes' ``prefixFromUserAgent``: printable characters, at most 128)."""
    manager = request.query.get("fieldManager")
    if manager:
        return manager
    return _agent_manager(request.headers.get("User-Agent", ""))


@functools.lru_cache(maxsize=256)
def _agent_manager(agent: str) -> str:
    prefix = agent.split("/", 1)[0]
    return "".join(c for c in prefix if c.isprintable())[:128]


def status_response(err: errors.ApiError) -> web.Response:
    return json_response(err.to_status(), status=err.status_code)


PROTOBUF = "application/vnd.kubernetes.protobuf"
# kubectl's typed commands (create deployment|configmap|secret|namespace, ...) always send protobuf, which
# is decoded for the kinds served here; say what works for anything else.
PROTOBUF_HINT = ("; this server decodes application/vnd.kubernetes.protobuf bodies only for the kinds it serves: "
                 "write the object with `kubectl create ... --dry-run=client -o yaml` and pass it to "
                 "`kubectl apply -f -`")


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()


async def read_raw(request: web.Request, accepted: tuple[str, ...]) -> tuple[bytes, str]:
    """The body bytes and media type after the size and Content-Type checks."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.RequestEntityTooLarge("Request entity too large: limit is 3145728")
    ctype = media_type(request) or "application/json"
    if ctype not in accepted:
        message = f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
        if ctype == PROTOBUF:
            message += PROTOBUF_HINT
        raise errors.UnsupportedMediaType(message)
    if request.content_length is not None:
        return await request.read(), ctype        # bounded by the check above (and client_max_size)
    raw = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        raw += chunk
        if len(raw) > MAX_BODY:
            raise errors.RequestEntityTooLarge("Request entity too large: limit is 3145728")
    return bytes(raw), ctype


def parse_document(raw: bytes, ctype: str) -> Any:
    """JSON (or YAML for ``*yaml`` types) → Python; malformed input is a 400."""
    if not raw or raw.isspace():
        raise errors.BadRequest("the body of the request was empty")
    if ctype.endswith("yaml") and raw.lstrip()[:1] not in (b"{", b"["):
        try:
            return yaml.load(raw, Loader=_YamlLoader)
        except yaml.YAMLError as e:
            raise errors.BadRequest(f"error converting YAML to JSON: {' '.join(str(e).split())}") from None
    try:
        return codec.loads(raw)
    except codec.JSONDecodeError as e:
        if ctype.endswith("yaml"):
            try:
                return yaml.load(raw, Loader=_YamlLoader)
            except yaml.YAMLError:
                pass
        raise errors.BadRequest(f"the body of the request could not be decoded as JSON: {e}") from None


async def read_object(request: web.Request) -> tuple[dict[str, Any], bytes | None]:
    """The request body as an API object (JSON, YAML or Kubernetes protobuf); returns ``(object, raw
    bytes)``, the raw bytes None for protobuf (they hold no JSON whose duplicate keys could be checked)."""
    raw, ctype = await read_raw(request, (*BODY_TYPES, PROTOBUF))
    if ctype == PROTOBUF:
        try:
            return protobuf.decode(raw), None
        except protobuf.ProtobufError as e:
            raise errors.UnsupportedMediaType(f"the body of the request could not be decoded as "
                                              f"{PROTOBUF}: {e}{PROTOBUF_HINT}") from None
    obj = parse_document(raw, ctype)
    if not isinstance(obj, dict):
        raise errors.BadRequest("the body of the request must be a JSON object")
    if not isinstance(obj.get("metadata", {}), dict):
        raise errors.BadRequest("metadata must be an object")
    return obj, raw


def query_bool(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise errors.BadRequest(f'invalid value for {name}: "{value}" (expected true or false)')


def query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f'invalid value for {name}: "{value}" (expected an integer)') from None


def dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise errors.BadRequest(f'Invalid dry run value: "{v}": supported values: "All"')
    return bool(values)


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any("as=Table" in part for part in accept.split(","))


def include_object(request: web.Request) -> str:
    value = request.query.get("includeObject") or "Metadata"
    if value not in ("None", "Metadata", "Object"):
        raise errors.BadRequest(f'invalid includeObject "{value}": supported values: "None", "Metadata", "Object"')
    return value


def validate_fields(request: web.Request, info: Any, obj: dict[str, Any],
                    raw: bytes | None) -> tuple[dict[str, Any], list[str]]:
    """Apply ``fieldValidation`` (Strict → 400, Warn → warnings, Ignore → dropped) to a body.

    Duplicate JSON keys are looked for (a second, slower pass over the raw body) only under Strict,
    which is what kubectl sends; under Warn (the default) only unknown fields are reported.
    """
    mode = request.query.get("fieldValidation")
    return fieldvalidation.check(info, obj, mode, raw if mode == "Strict" else None)


def check_kind(info: Any, obj: dict[str, Any]) -> None:
    """A body's apiVersion/kind must be the endpoint's (missing ones are filled in later)."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not api_version and not kind:
        return
    if (api_version or info.api_version, kind or info.kind) == (info.api_version, info.kind):
        return
    try:
        for_kind(str(api_version or info.api_version), str(kind or info.kind))
    except UnknownResource as e:
        raise errors.NotFound(str(e), details={"kind": str(kind or ""), "group": str(api_version or "")}) from None
    if api_version and api_version != info.api_version:
        raise errors.BadRequest(f"the API version in the data ({api_version}) does not match the expected API "
                                f"version ({info.api_version})")
    raise errors.BadRequest(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
