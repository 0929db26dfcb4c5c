"""Patches as Kubernetes applies them: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

Strategic merge patch and the client-side-apply three-way merge live in
:mod:`kubelite.api.strategicpatch`, server-side apply in :mod:`kubelite.api.managedfields`; both are
re-exported here so callers import every patch kind from one place. Pure functions on plain dicts.

Errors: a patch document that cannot be read raises :class:`~kubelite.api.errors.BadRequest`; a patch
that cannot be applied (missing path, failed ``test``) raises :class:`~kubelite.api.errors.Invalid`
(422), as kube-apiserver answers.
"""

from __future__ import annotations

import copy
from typing import Any

from kubelite.api.errors import BadRequest, Invalid
from kubelite.api.managedfields import apply_patch, update_managed_fields
from kubelite.api.strategicpatch import strategic_merge_patch, three_way_merge_patch

PATCH_TYPES: dict[str, str] = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise BadRequest("json patch: path must be a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequest(f'json patch: invalid JSON pointer "{path}"')
    return [_unescape(t) for t in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, for_add: bool = False) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise Invalid(f'json patch: invalid array index "{token}" in "{path}"')
    i = int(token)
    if i > len(container) or (i == len(container) and not for_add):
        raise Invalid(f"json patch: array index {i} out of bounds in \"{path}\"")
    return i


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise Invalid(f'json patch: path "{path}" does not exist: missing "{token}"')
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path)]
        else:
            raise Invalid(f'json patch: path "{path}" does not exist')
    return node, tokens[-1]


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if last not in parent:
            raise Invalid(f'json patch: path "{path}" does not exist')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path)]
    raise Invalid(f'json patch: path "{path}" does not exist')


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, for_add=True), value)
    else:
        raise Invalid(f'json patch: path "{path}" does not exist')
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise Invalid("json patch: cannot remove the whole document")
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if last not in parent:
            raise Invalid(f'json patch: unable to remove nonexistent key "{last}": path "{path}" does not exist')
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path))
    raise Invalid(f'json patch: path "{path}" does not exist')


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902: apply ``add/remove/replace/move/copy/test`` operations in order to a copy of ``target``."""
    if not isinstance(operations, list):
        raise BadRequest("json patch: the patch must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise BadRequest("json patch: each operation must be an object with an \"op\"")
        kind, path = op["op"], op.get("path")
        if path is None:
            raise BadRequest(f'json patch: operation "{kind}" has no "path"')
        if kind in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(f'json patch: operation "{kind}" has no "value"')
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            src = op.get("from")
            if src is None:
                raise BadRequest(f'json patch: operation "{kind}" has no "from"')
            if kind == "move":
                if path.startswith(src + "/"):
                    raise Invalid(f'json patch: cannot move "{src}" into its own child "{path}"')
                doc, value = _remove(doc, src)
            else:
                value = copy.deepcopy(_get(doc, src))
            doc = _add(doc, path, value)
        elif kind == "test":
            current = _get(doc, path)
            if current != op["value"] or isinstance(current, bool) != isinstance(op["value"], bool):
                raise Invalid(f'json patch: testing value {path} failed: test failed')
        else:
            raise BadRequest(f'json patch: unexpected operation "{kind}"')
    return doc


__all__ = ["PATCH_TYPES", "json_merge_patch", "json_patch", "strategic_merge_patch", "three_way_merge_patch",
           "apply_patch", "update_managed_fields"]
