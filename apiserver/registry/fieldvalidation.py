"""Field validation: unknown and duplicate fields handled per ``fieldValidation`` (Strict/Warn/Ignore).

As kube-apiserver decodes a body: fields not in Kubernetes' schema of the kind are always dropped;
``Strict`` turns them (and duplicate keys) into a 400 ``strict decoding error: unknown field "spec.foo"``,
``Warn`` returns them as warnings for ``Warning: 299`` headers, ``Ignore`` drops them silently.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from kubelite.api import schema
from kubelite.api.errors import BadRequest
from kubelite.api.jsonmemo import JsonMemo
from kubelite.api.resources import ResourceInfo

MODES = ("Strict", "Warn", "Ignore")


def normalize_mode(mode: str | None) -> str:
    """The query value as Kubernetes reads it; absent means Warn, anything else is a 400."""
    if mode is None or mode == "":
        return "Warn"
    if mode not in MODES:
        raise BadRequest(f"fieldValidation must be one of Ignore, Warn, Strict, got: {mode}")
    return mode


class _Pairs:
    """A JSON object as its key/value pairs in document order (duplicates kept)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


_INFO: dict[int, tuple[bool, dict[str, Any] | None, Any]] = {}


def _info(node: schema.Schema | None) -> tuple[bool, dict[str, Any] | None, Any]:
    """(free-form?, properties, resolved additionalProperties | True | None) of a node, memoized."""
    if node is None:
        return True, None, None
    found = _INFO.get(id(node))
    if found is None:
        extra = node.get("additionalProperties")
        extra = schema.resolve(extra) if isinstance(extra, dict) else (True if extra is True else None)
        props = node.get("properties")
        found = _INFO[id(node)] = (schema.is_free_form(node), props if isinstance(props, dict) else None, extra)
    return found


def _path(stack: list[str]) -> str:
    out = ""
    for segment in stack:
        out += segment if segment.startswith("[") or not out else "." + segment
    return out


def _scan(value: Any, node: schema.Schema | None, stack: list[str], problems: list[str]) -> None:
    """Append every unknown (and, for :class:`_Pairs`, duplicate) field under ``value`` to ``problems``."""
    if isinstance(value, list):
        item = schema.items(node) if node is not None else None
        for i, v in enumerate(value):
            if isinstance(v, (dict, list, _Pairs)):
                stack.append(f"[{i}]")
                _scan(v, item, stack, problems)
                stack.pop()
        return
    is_pairs = isinstance(value, _Pairs)
    if not is_pairs and not isinstance(value, dict):
        return
    free, props, extra = _info(node)
    if free and not is_pairs:
        return  # nothing to check below a free-form node when no duplicates can exist
    seen: set[str] = set()
    for key, sub in (value.pairs if is_pairs else value.items()):
        if is_pairs:
            if key in seen:
                stack.append(key)
                problems.append(f'duplicate field "{_path(stack)}"')
                stack.pop()
            seen.add(key)
        if free:
            child = None
        elif props is not None and key in props:
            child = schema.child(node, key)
        elif isinstance(extra, dict):
            child = extra
        elif extra is True:
            child = None
        else:
            stack.append(key)
            problems.append(f'unknown field "{_path(stack)}"')
            stack.pop()
            continue
        if isinstance(sub, (dict, list, _Pairs)):
            stack.append(key)
            _scan(sub, child, stack, problems)
            stack.pop()


@functools.cache
def _definition_names() -> dict[int, str]:
    return {id(node): name.rsplit(".", 1)[-1] for name, node in schema.definitions().items()}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "value")


def _go_type(node: schema.Schema) -> str:
    name = _definition_names().get(id(node))
    kinds = schema.types(node) - {"null"}
    if "integer" in kinds:
        return str(node.get("format") or "int64")
    if "number" in kinds:
        return "float64"
    if "string" in kinds:
        return "string"
    if "boolean" in kinds:
        return "bool"
    if "array" in kinds:
        item = schema.items(node)
        return "[]" + (_go_type(item) if item is not None else "interface {}")
    if name:
        return f"v1.{name}"
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        resolved = schema.resolve(extra)
        return "map[string]" + (_go_type(resolved) if resolved is not None else "interface {}")
    return "struct"


_KINDS: dict[int, frozenset[str]] = {}
_BY_PYTHON_TYPE: dict[type, frozenset[str]] = {
    bool: frozenset({"boolean"}), int: frozenset({"integer", "number"}), float: frozenset({"number"}),
    str: frozenset({"string"}), dict: frozenset({"object"}), list: frozenset({"array"}),
}


def _kinds(node: schema.Schema) -> frozenset[str]:
    """The JSON types a node accepts (empty: anything), memoized."""
    found = _KINDS.get(id(node))
    if found is None:
        flexible = "oneOf" in node or "anyOf" in node
        found = _KINDS[id(node)] = frozenset() if flexible else frozenset(schema.types(node) - {"null"})
    return found


def _accepts(node: schema.Schema, value: Any) -> bool:
    kinds = _kinds(node)
    if not kinds or value is None:
        return True
    wanted = _BY_PYTHON_TYPE.get(type(value))
    if wanted is None or kinds & wanted:
        return True
    return isinstance(value, float) and "integer" in kinds and value.is_integer()


def type_error(value: Any, node: schema.Schema | None, struct: str = "", path: tuple[str, ...] = ()) -> str | None:
    """The first value whose JSON type the schema rejects, worded like Go's decoder (None: all fit)."""
    if node is None:
        return None
    if isinstance(value, list):
        item = schema.items(node)
        if item is not None:
            for v in value:
                found = _mismatch(v, item, struct, path)
                if found:
                    return found
        return None
    if not isinstance(value, dict):
        return None
    free, props, extra = _info(node)
    if free:
        return None
    struct = _definition_names().get(id(node), struct)
    for key, sub in value.items():
        if props is not None and key in props:
            child, sub_path = schema.child(node, key), path + (key,)
        elif isinstance(extra, dict):
            child, sub_path = extra, path  # map keys are not part of Go's field path
        else:
            continue
        if child is None:
            continue
        found = _mismatch(sub, child, struct, sub_path)
        if found:
            return found
    return None


def _mismatch(value: Any, node: schema.Schema, struct: str, path: tuple[str, ...]) -> str | None:
    """Go's unmarshal error when ``value`` is not of ``node``'s type, else the first one below it."""
    if not _accepts(node, value):
        return (f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                f"{struct}.{'.'.join(path)} of type {_go_type(node)}")
    if isinstance(value, (dict, list)):
        return type_error(value, node, struct, path)
    return None


def _strip(value: Any, node: schema.Schema | None) -> Any:
    """A copy of ``value`` without the fields the schema lacks."""
    if isinstance(value, list):
        item = schema.items(node) if node is not None else None
        return [_strip(v, item) for v in value]
    if not isinstance(value, dict):
        return value
    free, props, extra = _info(node)
    if free:
        return value
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if props is not None and key in props:
            out[key] = _strip(sub, schema.child(node, key))
        elif isinstance(extra, dict):
            out[key] = _strip(sub, extra)
        elif extra is True:
            out[key] = sub
    return out


def unknown_fields(api_version: str, kind: str, obj: Any) -> tuple[dict[str, Any], list[str]]:
    """``obj`` without the fields Kubernetes' schema of the kind lacks, and the problems found, in order.

    ``obj`` may be decoded with :class:`_Pairs` objects (then duplicate keys are reported too).
    """
    root = schema.for_kind(api_version, kind)
    problems: list[str] = []
    _scan(obj, root, [], problems)
    if not problems or isinstance(obj, _Pairs):
        return obj, problems
    return _strip(obj, root), problems


class _Duplicates(Exception):
    pass


def _no_duplicates_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicates
    return out


def _has_duplicates(raw: bytes | str) -> bool:
    try:
        json.loads(raw, object_pairs_hook=_no_duplicates_hook)
    except _Duplicates:
        return True
    except ValueError:
        return False
    return False


def _pairs(raw: bytes | str) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_Pairs)
    except ValueError:
        return None


_KEY_END = re.compile(rb'"\s*:')
_KEY_END_STR = re.compile(r'"\s*:')


def _count_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values() if isinstance(v, (dict, list)))
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value if isinstance(v, (dict, list)))
    return 0


_UNKNOWN = (None, None, True)
_SLOTS: dict[int, dict[str, tuple[schema.Schema | None, frozenset[type] | None, bool]]] = {}


_ACCEPTED: dict[int, frozenset[type] | None] = {}


def _accepted_types(node: schema.Schema | None) -> frozenset[type] | None:
    """The Python types of JSON values a node accepts (None: any), memoized."""
    if node is None:
        return None
    try:
        return _ACCEPTED[id(node)]
    except KeyError:
        kinds = _kinds(node)
        found = _ACCEPTED[id(node)] = frozenset(t for t, w in _BY_PYTHON_TYPE.items() if kinds & w) if kinds else None
        return found


def _slot(node: schema.Schema, key: str) -> tuple[schema.Schema | None, frozenset[type] | None, bool]:
    """``(child schema, accepted types, unknown?)`` of ``key`` under an object node, memoized."""
    table = _SLOTS.get(id(node))
    if table is None:
        table = _SLOTS[id(node)] = {}
    found = table.get(key)
    if found is None:
        _free, props, extra = _info(node)
        if props is not None and key in props:
            child = schema.child(node, key)
        elif isinstance(extra, dict):
            child = extra
        elif extra is True:
            child = None
        else:
            table[key] = _UNKNOWN
            return _UNKNOWN
        found = table[key] = (child, _accepted_types(child), False)
    return found


_LIST_ITEMS: dict[int, tuple[schema.Schema | None, frozenset[type] | None]] = {}


def _clean(value: Any, node: schema.Schema | None) -> int:
    """The number of keys under ``value`` if the schema knows every field and accepts every type
    there, else -1: one walk that spares the common, clean body :func:`type_error`, :func:`_scan`
    and the duplicate-key parse (it may answer -1 where they find nothing; never the reverse)."""
    if isinstance(value, list):
        found = _LIST_ITEMS.get(id(node))
        if found is None:
            item = schema.items(node) if node is not None else None
            found = _LIST_ITEMS[id(node)] = (item, _accepted_types(item) if item is not None else None)
        item, accepted = found
        total = 0
        for v in value:
            if accepted is not None and v is not None and type(v) not in accepted:
                return -1
            if isinstance(v, (dict, list)):
                n = _clean(v, item)
                if n < 0:
                    return -1
                total += n
        return total
    if not isinstance(value, dict):
        return 0
    free, _props, _extra = _info(node)
    if free:
        return _count_keys(value)
    assert node is not None
    total = len(value)
    table = _SLOTS.get(id(node))
    for key, sub in value.items():
        found = table.get(key) if table is not None else None
        child, accepted, unknown = found if found is not None else _slot(node, key)
        if unknown or (accepted is not None and sub is not None and type(sub) not in accepted):
            return -1
        if isinstance(sub, (dict, list)):
            n = _clean_spec(sub, child) if key == "spec" and isinstance(sub, dict) else _clean(sub, child)
            if n < 0:
                return -1
            total += n
    return total


_SPECS: JsonMemo[int] = JsonMemo()


def _clean_spec(spec: dict[str, Any], node: schema.Schema | None) -> int:
    """:func:`_clean` of a ``spec``, memoized by its JSON (a controller's objects share one spec)."""
    key = _SPECS.key(spec)
    if key is None:
        return _clean(spec, node)
    found = _SPECS.get(id(node), key)
    if found is None:
        found = _clean(spec, node)
        _SPECS.put(id(node), key, found)
    return found


def _surely_clean(obj: Any, root: schema.Schema | None, raw: bytes | str | None) -> bool:
    """True when ``obj`` has no unknown field, no wrong type and (``raw`` given) no duplicate key.

    Every key of ``raw`` ends in ``"`` + whitespace + ``:`` (strings may add more matches), so
    matches == keys decoded means no key was repeated."""
    keys = _clean(obj, root)
    if keys < 0:
        return False
    if raw is None:
        return True
    matches = len(_KEY_END.findall(raw)) if isinstance(raw, bytes) else len(_KEY_END_STR.findall(raw))
    return matches == keys


def check(info: ResourceInfo, obj: dict[str, Any], mode: str | None,
          raw: bytes | str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Apply ``fieldValidation`` to a decoded body of ``info``'s kind.

    Args:
        info: the resource the body is written to (its apiVersion/kind select the schema).
        obj: the decoded body.
        mode: the ``fieldValidation`` query value (None → Warn, as kube-apiserver).
        raw: the undecoded JSON body, to find duplicate keys (YAML bodies: leave None).

    Returns:
        ``(obj without unknown fields, warnings)``; warnings are the texts for ``Warning: 299`` headers.

    Raises:
        BadRequest: a value of the wrong JSON type (any mode, as Kubernetes' decoder), ``Strict`` and an
            unknown or duplicate field, or an unknown mode.
    """
    mode = normalize_mode(mode)
    api_version = str(obj.get("apiVersion") or info.api_version)
    kind = str(obj.get("kind") or info.kind)
    root = schema.for_kind(api_version, kind)
    if _surely_clean(obj, root, raw if raw is not None and raw.lstrip()[:1] in (b"{", "{") else None):
        return obj, []
    wrong_type = type_error(obj, schema.for_kind(api_version, kind))
    if wrong_type:  # a decoding error in Kubernetes, whatever fieldValidation says
        raise BadRequest(f'{kind} in version "{api_version.rpartition("/")[2]}" cannot be handled as a {kind}: '
                         f"{wrong_type}")
    if mode == "Ignore":
        return unknown_fields(api_version, kind, obj)[0], []
    cleaned, problems = unknown_fields(api_version, kind, obj)
    if raw is not None and raw.lstrip()[:1] in (b"{", "{") and _has_duplicates(raw):
        parsed = _pairs(raw)  # document order and duplicate keys, as Kubernetes reports them
        if isinstance(parsed, _Pairs):
            problems = unknown_fields(api_version, kind, parsed)[1]
    if mode == "Strict" and problems:
        raise BadRequest(f'{kind} in version "{api_version.rpartition("/")[2]}" cannot be handled as a {kind}: '
                         "strict decoding error: " + ", ".join(problems))
    return cleaned, problems


def warning_header(text: str, code: int = 299, agent: str = "-") -> str:
    """The ``Warning`` header value for a warning text, quoted as Kubernetes does (``\\"`` and ``\\\\``)."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    quoted = clean.replace("\\", "\\\\").replace('"', '\\"')
    return f'{code:03d} {agent} "{quoted}"'
