"""Server-side apply and ``metadata.managedFields`` (FieldsV1), after sigs.k8s.io/structured-merge-diff.

A field set is a set of paths; a path is a tuple of FieldsV1 path elements: ``f:<field>``,
``k:{"name":"c"}`` (a list item by its map keys), ``v:"x"`` (a set member) and ``.`` (the item itself).
:func:`apply_patch` merges an applied configuration owned by a manager (409 ``FieldManagerConflict``
when another manager owns a field with a different value, unless ``force``), removes the fields the
manager applied before and dropped, and records ownership; :func:`update_managed_fields` records the
fields an ordinary write (``Update``) changed. Pure functions on plain dicts.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

from kubelite.api import schema
from kubelite.api.errors import BadRequest, Conflict
from kubelite.api.strategicpatch import root_schema, strategic_merge_patch

Path = tuple[str, ...]
_SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
              "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"}
_MISSING = object()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list_keys(node: schema.Schema | None, key: str) -> list[str] | None:
    raw = schema.property_schema(node, key) or {}
    if raw.get("x-kubernetes-list-type") == "map":
        return list(raw.get("x-kubernetes-list-map-keys") or [])
    merge_key = raw.get("x-kubernetes-patch-merge-key")
    return [merge_key] if merge_key else None


def _is_set(node: schema.Schema | None, key: str) -> bool:
    raw = schema.property_schema(node, key) or {}
    return raw.get("x-kubernetes-list-type") == "set" or (
        "merge" in str(raw.get("x-kubernetes-patch-strategy", "")) and not raw.get("x-kubernetes-patch-merge-key"))


def _item_key(item: dict[str, Any], keys: list[str]) -> str:
    return "k:" + json.dumps({k: item[k] for k in sorted(keys) if k in item}, separators=(",", ":"))


def field_set(obj: Any, node: schema.Schema | None, prefix: Path = (), top: bool = True) -> set[Path]:
    """The leaf paths an object sets (top level: apiVersion, kind, status and identity fields skipped)."""
    out: set[Path] = set()
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        if top and key in ("apiVersion", "kind", "status"):
            continue
        path = prefix + (f"f:{key}",)
        sub = schema.child(node, key)
        if top and key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _SKIP_META}
            if not value:
                continue
        if isinstance(value, dict) and value and (sub is None or not schema.is_free_form(sub)):
            out |= field_set(value, sub, path, top=False)
        elif isinstance(value, list) and value and (keys := _list_keys(node, key)) and all(
                isinstance(e, dict) for e in value):
            item = schema.items(sub)
            for e in value:
                ipath = path + (_item_key(e, keys),)
                out.add(ipath + (".",))
                out |= field_set(e, item, ipath, top=False)
        elif isinstance(value, list) and value and _is_set(node, key):
            out |= {path + ("v:" + json.dumps(e, separators=(",", ":")),) for e in value}
        else:
            out.add(path)
    return out


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return tree


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for element, sub in tree.items():
        if isinstance(sub, dict) and sub:
            out |= from_fields_v1(sub, prefix + (element,))
        else:
            out.add(prefix + (element,))
    return out


def _get(obj: Any, path: Path) -> Any:
    for element in path:
        if element == ".":
            continue
        kind, _, rest = element.partition(":")
        if kind == "f" and isinstance(obj, dict):
            obj = obj.get(rest, _MISSING)
        elif kind == "k" and isinstance(obj, list):
            want = json.loads(rest)
            obj = next((e for e in obj if isinstance(e, dict) and all(e.get(k) == v for k, v in want.items())),
                       _MISSING)
        elif kind == "v" and isinstance(obj, list):
            value = json.loads(rest)
            obj = value if value in obj else _MISSING
        else:
            return _MISSING
        if obj is _MISSING:
            return _MISSING
    return obj


def _remove(obj: Any, path: Path) -> None:
    if path and path[-1] == ".":
        path = path[:-1]
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "k" and isinstance(parent, list):
        want = json.loads(rest)
        parent[:] = [e for e in parent if not (isinstance(e, dict) and all(e.get(k) == v for k, v in want.items()))]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(rest)
        parent[:] = [e for e in parent if e != value]


def format_path(path: Path) -> str:
    """``.spec.template.spec.containers[name="nginx"].image`` as Kubernetes prints conflicts."""
    out = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out += f".{rest}"
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
    return out


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in (obj.get("metadata", {}).get("managedFields") or []) if isinstance(e, dict)]


def _set_entries(obj: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    kept = [e for e in entries if e.get("fieldsV1")]
    obj.setdefault("metadata", {})["managedFields"] = kept
    if not kept:
        obj["metadata"].pop("managedFields")


def _entry(manager: str, operation: str, api_version: str, paths: set[Path],
           subresource: str | None = None) -> dict[str, Any]:
    entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": _now(),
             "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}
    if subresource:
        entry["subresource"] = subresource
    return entry


def _same_owner(e: dict[str, Any], manager: str, operation: str, subresource: str | None) -> bool:
    return (e.get("manager") == manager and e.get("operation") == operation
            and (e.get("subresource") or None) == (subresource or None))


def apply_patch(live: dict[str, Any] | None, applied: dict[str, Any], manager: str | None, *, force: bool = False,
                subresource: str | None = None) -> dict[str, Any]:
    """Server-side apply of ``applied`` (the decoded apply-patch+yaml body) onto ``live`` (None: create).

    Raises:
        BadRequest: no field manager, or the body is not an object.
        Conflict: another manager owns a field ``applied`` sets to a different value (``force`` takes it).
    """
    if not manager:
        raise BadRequest("PATCH, application/apply-patch+yaml requires fieldManager to be set")
    if not isinstance(applied, dict):
        raise BadRequest("apply patch: the body must be an object")
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")
    node = root_schema(applied if applied.get("kind") else (live or {}), api_version)
    mine = field_set(applied, node)
    base = copy.deepcopy(live) if live is not None else {}
    entries = _entries(base)
    merged = strategic_merge_patch(base, _without_managed(applied), api_version or None,
                                   str(applied.get("kind") or base.get("kind") or "") or None)
    conflicts: list[tuple[str, Path]] = []
    for e in entries:
        if _same_owner(e, manager, "Apply", subresource):
            continue
        theirs = from_fields_v1(e.get("fieldsV1"))
        for path in sorted(mine & theirs):
            if path[-1] != "." and _get(base, path) != _get(merged, path):
                conflicts.append((str(e.get("manager", "")), path))
    if conflicts and not force:
        raise _conflict_error(conflicts, api_version)
    previous: set[Path] = set()
    others: set[Path] = set()
    new_entries: list[dict[str, Any]] = []
    for e in entries:
        paths = from_fields_v1(e.get("fieldsV1"))
        if _same_owner(e, manager, "Apply", subresource):
            previous = paths
            continue
        if force:
            paths -= {p for _, p in conflicts}
        changed = {p for p in paths & mine if p[-1] != "." and _get(base, p) != _get(merged, p)}
        paths -= changed
        others |= paths
        e = dict(e, fieldsV1=to_fields_v1(paths))
        new_entries.append(e)
    for path in sorted(previous - mine - others, key=len, reverse=True):
        if not any(o[:len(path)] == path for o in others | mine):
            _remove(merged, path)
    new_entries.append(_entry(manager, "Apply", api_version, mine, subresource))
    _set_entries(merged, new_entries)
    return merged


def _without_managed(applied: dict[str, Any]) -> dict[str, Any]:
    out = dict(applied)
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in ("managedFields", "resourceVersion")}
    return out


def _conflict_error(conflicts: list[tuple[str, Path]], api_version: str) -> Conflict:
    causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {api_version}',
               "field": format_path(p)} for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f'Apply failed with 1 conflict: conflict with "{m}" using {api_version}: {format_path(p)}'
    else:
        lines = "".join(f'\n- conflict with "{m}" using {api_version}: {format_path(p)}' for m, p in conflicts)
        message = f"Apply failed with {len(conflicts)} conflicts: {lines}"
    return Conflict(message, details={"causes": causes})


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], manager: str | None,
                          operation: str = "Update", subresource: str | None = None) -> None:
    """Record in ``new.metadata.managedFields`` the fields this write (create/update/patch) changed.

    ``new`` is mutated; the other managers lose the fields whose value changed. ``manager`` None
    uses the user-agent fallback Kubernetes uses for unnamed writers (``unknown``).
    """
    manager = manager or "unknown"
    node = root_schema(new)
    if subresource == "status":
        current = {p for p in _status_set(new, node)}
        before = _status_set(old, node) if old else set()
    else:
        current = field_set(new, node)
        before = field_set(old, node) if old else set()
    changed = {p for p in current if p not in before or _get(old, p) != _get(new, p)} if old else current
    entries = [e for e in (_entries(old) if old else _entries(new))]
    if not changed and not any(_same_owner(e, manager, operation, subresource) for e in entries):
        _set_entries(new, entries)
        return
    result: list[dict[str, Any]] = []
    mine: set[Path] = set(changed)
    for e in entries:
        paths = from_fields_v1(e.get("fieldsV1")) & (current | _status_set(new, node))
        if _same_owner(e, manager, operation, subresource):
            mine |= paths
            continue
        result.append(dict(e, fieldsV1=to_fields_v1(paths - changed)))
    result.append(_entry(manager, operation, str(new.get("apiVersion", "")), mine, subresource))
    _set_entries(new, result)


def _status_set(obj: dict[str, Any] | None, node: schema.Schema | None) -> set[Path]:
    if not obj or not isinstance(obj.get("status"), dict):
        return set()
    return field_set(obj["status"], schema.child(node, "status"), ("f:status",), top=False)
