"""Server-side apply and ``metadata.managedFields`` (FieldsV1), after sigs.k8s.io/structured-merge-diff.

A field set is a set of paths; a path is a tuple of FieldsV1 path elements: ``f:<field>``,
``k:{"name":"c"}`` (a list item by its map keys), ``v:"x"`` (a set member) and ``.`` (the item itself).
:func:`apply_patch` merges an applied configuration owned by a manager (409 ``FieldManagerConflict``
when another manager owns a field with a different value, unless ``force``), removes the fields the
manager applied before and dropped, and records ownership; :func:`update_managed_fields` records the
fields an ordinary write (``Update``) changed. Pure functions on plain dicts.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from kubelite.api import schema
from kubelite.api.errors import BadRequest, Conflict
from kubelite.api.fieldpath import (Path, diff, field_set, field_values, fields_tree, format_path,
                                    from_fields_v1, get_path, prune_empty, remove_path, to_fields_v1, tree_add,
                                    tree_has, tree_remove)
from kubelite.api.strategicpatch import root_schema, strategic_merge_patch

KUBECTL_MANAGER = "kubectl"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


_clock: tuple[int, str] = (0, "")


def _now() -> str:
    """RFC 3339 UTC, second precision (formatted once per second: every write records it)."""
    global _clock
    second = int(time.time())
    if second != _clock[0]:
        _clock = (second, datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _clock[1]


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
    base = schema.clone(live) if live is not None else {}
    entries = _entries(base)
    merged = strategic_merge_patch(base, _without_managed(applied), api_version or None,
                                   str(applied.get("kind") or base.get("kind") or "") or None)
    conflicts: list[tuple[str, Path]] = []
    for e in entries:
        if _same_owner(e, manager, "Apply", subresource):
            continue
        theirs = from_fields_v1(e.get("fieldsV1"))
        for path in sorted(mine & theirs):
            if path[-1] != "." and get_path(base, path) != get_path(merged, path):
                conflicts.append((str(e.get("manager", "")), path))
    if conflicts and not force:
        allowed = _last_applied_fields(base, node) if manager == KUBECTL_MANAGER else set()
        if not all(p in allowed for _, p in conflicts):
            raise _conflict_error([(m, p) for m, p in conflicts if p not in allowed], api_version)
        force = True  # kubectl upgrading a client-side-applied object (lastAppliedManager)
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
        changed = {p for p in paths & mine if p[-1] != "." and get_path(base, p) != get_path(merged, p)}
        paths -= changed
        others |= paths
        e = dict(e, fieldsV1=to_fields_v1(paths))
        new_entries.append(e)
    for path in sorted(previous - mine - others, key=len, reverse=True):
        if not any(o[:len(path)] == path for o in others | mine):
            remove_path(merged, path)
            prune_empty(merged, path)
    new_entries.append(_entry(manager, "Apply", api_version, mine, subresource))
    _set_entries(merged, new_entries)
    if manager == KUBECTL_MANAGER and _last_applied(base) is not None:
        _set_last_applied(merged, applied)  # lastAppliedUpdater: keep client-side apply in step
    return merged


def _last_applied(obj: dict[str, Any]) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    return value if isinstance(value, str) and value else None


def _last_applied_fields(live: dict[str, Any], node: schema.Schema | None) -> set[Path]:
    """The fields the live object's last-applied-configuration sets (conflicts on them are allowed)."""
    text = _last_applied(live)
    if text is None:
        return set()
    try:
        last = json.loads(text)
    except ValueError:
        return set()
    return field_set(last, node) if isinstance(last, dict) else set()


def _set_last_applied(obj: dict[str, Any], applied: dict[str, Any]) -> None:
    config = schema.clone(_without_managed(applied))
    annotations = (config.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            config["metadata"].pop("annotations")
    obj.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = json.dumps(
        config, separators=(",", ":"), sort_keys=True) + "\n"  # runtime.Encode's trailing newline


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
    if old is None and not _entries(new):  # create: the writer owns everything it wrote
        tree = fields_tree(new, node) if subresource != "status" else {}
        if tree:
            entry = _entry(manager, operation, str(new.get("apiVersion", "")), set(), subresource)
            entry["fieldsV1"] = tree
            new.setdefault("metadata", {})["managedFields"] = [entry]
        return
    entries = _entries(old) if old else _entries(new)
    given = (new.get("metadata") or {}).get("managedFields")
    if old and given is not None and given != (old.get("metadata") or {}).get("managedFields"):
        entries = _entries(new)  # the writer replaced managedFields (e.g. kubectl's CSA → SSA migration)
        if not given:
            new["metadata"].pop("managedFields", None)
            return
    if subresource == "status":
        status_node = schema.child(node, "status")
        changed, removed = diff((old or {}).get("status"), new.get("status"), status_node, ("f:status",), False)
    else:
        changed, removed = diff(old or {}, new, node, (), True)
    if not changed and not removed and not any(_same_owner(e, manager, operation, subresource) for e in entries):
        _set_entries(new, entries)
        return
    touched = changed | removed
    result: list[dict[str, Any]] = []
    mine: dict[str, Any] = {}
    for e in entries:
        tree = e.get("fieldsV1") if isinstance(e.get("fieldsV1"), dict) else {}
        if _same_owner(e, manager, operation, subresource):
            mine = schema.clone(tree)
            continue
        hits = [p for p in touched if tree_has(tree, p)]
        if hits:
            tree = schema.clone(tree)
            for path in hits:
                tree_remove(tree, path)
            e = dict(e, fieldsV1=tree)
        result.append(e)
    for path in removed:
        tree_remove(mine, path)
    for path in changed:
        tree_add(mine, path)
    entry = _entry(manager, operation, str(new.get("apiVersion", "")), set(), subresource)
    entry["fieldsV1"] = mine
    result.append(entry)
    _set_entries(new, result)


def _status_values(obj: dict[str, Any] | None, node: schema.Schema | None) -> dict[Path, Any]:
    if not obj or not isinstance(obj.get("status"), dict):
        return {}
    return field_values(obj["status"], schema.child(node, "status"), ("f:status",), top=False)
