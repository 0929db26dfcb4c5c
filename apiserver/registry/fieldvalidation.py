"""Field validation: unknown and duplicate fields handled per ``fieldValidation`` (Strict/Warn/Ignore).

As kube-apiserver decodes a body: fields not in Kubernetes' schema of the kind are always dropped;
``Strict`` turns them (and duplicate keys) into a 400 ``strict decoding error: unknown field "spec.foo"``,
``Warn`` returns them as warnings for ``Warning: 299`` headers, ``Ignore`` drops them silently.
"""

from __future__ import annotations

import json
from typing import Any

from kubelite.api import schema
from kubelite.api.errors import BadRequest
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


def _walk(value: Any, node: schema.Schema | None, path: str, problems: list[str]) -> Any:
    """Return ``value`` without unknown fields, appending each unknown/duplicate field to ``problems``.

    ``value`` is decoded JSON whose objects are dicts or :class:`_Pairs` (then duplicates are seen too).
    """
    if isinstance(value, _Pairs):
        pairs = value.pairs
    elif isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        item = schema.items(node) if node is not None else None
        return [_walk(v, item, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    else:
        return value
    free = node is None or schema.is_free_form(node)
    props = node.get("properties") if node is not None else None
    extra = node.get("additionalProperties") if node is not None else None
    out: dict[str, Any] = {}
    for key, sub in pairs:
        sub_path = f"{path}.{key}" if path else key
        if key in out:
            problems.append(f'duplicate field "{sub_path}"')
        if free:
            out[key] = _walk(sub, None, sub_path, problems)
        elif isinstance(props, dict) and key in props:
            out[key] = _walk(sub, schema.resolve(props[key]), sub_path, problems)
        elif isinstance(extra, dict):
            out[key] = _walk(sub, schema.resolve(extra), sub_path, problems)
        elif extra is True:
            out[key] = _walk(sub, None, sub_path, problems)
        else:
            problems.append(f'unknown field "{sub_path}"')
    return out


def unknown_fields(api_version: str, kind: str, obj: Any) -> tuple[dict[str, Any], list[str]]:
    """``obj`` without the fields Kubernetes' schema of the kind lacks, and the problems found, in order."""
    root = schema.for_kind(api_version, kind)
    problems: list[str] = []
    if root is None:
        return _walk(obj, None, "", problems), problems
    return _walk(obj, root, "", problems), problems


def _pairs(raw: bytes | str) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_Pairs)
    except ValueError:
        return None


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
        BadRequest: ``Strict`` and an unknown or duplicate field, or an unknown mode.
    """
    mode = normalize_mode(mode)
    api_version = str(obj.get("apiVersion") or info.api_version)
    kind = str(obj.get("kind") or info.kind)
    if mode == "Ignore":
        return unknown_fields(api_version, kind, obj)[0], []
    cleaned, problems = unknown_fields(api_version, kind, obj)
    if raw is not None and raw.lstrip()[:1] in (b"{", "{"):
        parsed = _pairs(raw)  # document order and duplicate keys, as Kubernetes reports them
        if isinstance(parsed, _Pairs):
            problems = unknown_fields(api_version, kind, parsed)[1]
    if mode == "Strict" and problems:
        raise BadRequest(f'{kind} in version "{api_version.rpartition("/")[2]}" cannot be handled as a {kind}: '
                         "strict decoding error: " + ", ".join(problems))
    return cleaned, problems
