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

import orjson

from kubelite.api import schema
from kubelite.api.errors import BadRequest, Conflict
from kubelite.api.strategicpatch import root_schema, strategic_merge_patch

Path = tuple[str, ...]
_SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
              "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"}
_MISSING = object()
KUBECTL_MANAGER = "kubectl"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


_META_CACHE: dict[tuple[int, str], tuple[list[str] | None, bool]] = {}


def _list_meta(node: schema.Schema | None, key: str) -> tuple[list[str] | None, bool]:
    """(list map keys, is a set) of field ``key`` of ``node``, memoized by node identity."""
    cache_key = (id(node), key)
    found = _META_CACHE.get(cache_key)
    if found is None:
        raw = schema.property_schema(node, key) or {}
        if raw.get("x-kubernetes-list-type") == "map":
            keys: list[str] | None = sorted(raw.get("x-kubernetes-list-map-keys") or [])
        else:
            merge_key = raw.get("x-kubernetes-patch-merge-key")
            keys = [merge_key] if merge_key else None
        is_set = raw.get("x-kubernetes-list-type") == "set" or (
            "merge" in str(raw.get("x-kubernetes-patch-strategy", "")) and not raw.get("x-kubernetes-patch-merge-key"))
        found = _META_CACHE[cache_key] = (keys, is_set)
    return found


def _list_keys(node: schema.Schema | None, key: str) -> list[str] | None:
    return _list_meta(node, key)[0]


def _is_set(node: schema.Schema | None, key: str) -> bool:
    return _list_meta(node, key)[1]


def _encode(value: Any) -> str:
    return orjson.dumps(value).decode()


def _item_key(item: dict[str, Any], keys: list[str]) -> str:
    """``k:{"containerPort":80,"protocol":"TCP"}`` (keys sorted, as Kubernetes writes them)."""
    return "k:{" + ",".join(f'"{k}":{_encode(item[k])}' for k in keys if k in item) + "}"


def field_values(obj: Any, node: schema.Schema | None, prefix: Path = (), top: bool = True) -> dict[Path, Any]:
    """Each leaf path an object sets, with its value (list items' ``.`` and set members map to True).

    At the top level apiVersion, kind, status and the identity fields of metadata are skipped.
    """
    out: dict[Path, Any] = {}
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
            out.update(field_values(value, sub, path, top=False))
        elif isinstance(value, list) and value and (keys := _list_keys(node, key)) and all(
                isinstance(e, dict) for e in value):
            item = schema.items(sub)
            for e in value:
                ipath = path + (_item_key(e, keys),)
                out[ipath + (".",)] = True
                out.update(field_values(e, item, ipath, top=False))
        elif isinstance(value, list) and value and _is_set(node, key):
            for e in value:
                out[path + ("v:" + _encode(e),)] = True
        else:
            out[path] = value
    return out


def fields_tree(obj: Any, node: schema.Schema | None, top: bool = True) -> dict[str, Any]:
    """The FieldsV1 tree of an object directly (same paths as :func:`field_values`, built faster)."""
    out: dict[str, Any] = {}
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        if top and key in ("apiVersion", "kind", "status"):
            continue
        sub = schema.child(node, key)
        if top and key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _SKIP_META}
            if not value:
                continue
        if isinstance(value, dict) and value and (sub is None or not schema.is_free_form(sub)):
            out[f"f:{key}"] = fields_tree(value, sub, top=False)
        elif isinstance(value, list) and value and (keys := _list_keys(node, key)) and all(
                isinstance(e, dict) for e in value):
            item = schema.items(sub)
            out[f"f:{key}"] = {_item_key(e, keys): {".": {}, **fields_tree(e, item, top=False)} for e in value}
        elif isinstance(value, list) and value and _is_set(node, key):
            out[f"f:{key}"] = {"v:" + _encode(e): {} for e in value}
        else:
            out[f"f:{key}"] = {}
    return out


def field_set(obj: Any, node: schema.Schema | None, prefix: Path = (), top: bool = True) -> set[Path]:
    """The leaf paths an object sets (see :func:`field_values`)."""
    return set(field_values(obj, node, prefix, top))


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


def _prune_empty(obj: dict[str, Any], path: Path) -> None:
    """Drop maps the removal emptied (``labels: {}``), as Go's omitempty would not serialize them."""
    fields = [p for p in path if p != "."]
    for depth in range(len(fields) - 1, 0, -1):
        parent_path = tuple(fields[:depth])
        if not all(e.startswith("f:") for e in parent_path):
            return
        value = _get(obj, parent_path)
        if isinstance(value, dict) and not value:
            _remove(obj, parent_path)
        else:
            return


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
        changed = {p for p in paths & mine if p[-1] != "." and _get(base, p) != _get(merged, p)}
        paths -= changed
        others |= paths
        e = dict(e, fieldsV1=to_fields_v1(paths))
        new_entries.append(e)
    for path in sorted(previous - mine - others, key=len, reverse=True):
        if not any(o[:len(path)] == path for o in others | mine):
            _remove(merged, path)
            _prune_empty(merged, path)
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
    config = copy.deepcopy(_without_managed(applied))
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
        changed, removed = _diff((old or {}).get("status"), new.get("status"), status_node, ("f:status",), False)
    else:
        changed, removed = _diff(old or {}, new, node, (), True)
    if not changed and not removed and not any(_same_owner(e, manager, operation, subresource) for e in entries):
        _set_entries(new, entries)
        return
    touched = changed | removed
    result: list[dict[str, Any]] = []
    mine: dict[str, Any] = {}
    for e in entries:
        tree = e.get("fieldsV1") if isinstance(e.get("fieldsV1"), dict) else {}
        if _same_owner(e, manager, operation, subresource):
            mine = copy.deepcopy(tree)
            continue
        hits = [p for p in touched if _tree_has(tree, p)]
        if hits:
            tree = copy.deepcopy(tree)
            for path in hits:
                _tree_remove(tree, path)
            e = dict(e, fieldsV1=tree)
        result.append(e)
    for path in removed:
        _tree_remove(mine, path)
    for path in changed:
        _tree_add(mine, path)
    entry = _entry(manager, operation, str(new.get("apiVersion", "")), set(), subresource)
    entry["fieldsV1"] = mine
    result.append(entry)
    _set_entries(new, result)


def _diff(old: Any, new: Any, node: schema.Schema | None, prefix: Path, top: bool) -> tuple[set[Path], set[Path]]:
    """(paths set or changed in ``new``, paths of ``old`` gone from ``new``), descending only where they differ."""
    changed: set[Path] = set()
    removed: set[Path] = set()
    if not isinstance(old, dict):
        old = {}
    if not isinstance(new, dict):
        new = {}
    for key in set(old) | set(new):
        if top and key in ("apiVersion", "kind", "status"):
            continue
        ov, nv = old.get(key, _MISSING), new.get(key, _MISSING)
        if top and key == "metadata":
            ov = {k: v for k, v in ov.items() if k not in _SKIP_META} if isinstance(ov, dict) else {}
            nv = {k: v for k, v in nv.items() if k not in _SKIP_META} if isinstance(nv, dict) else {}
        if ov == nv:
            continue
        path = prefix + (f"f:{key}",)
        sub = schema.child(node, key)
        keys, is_set = _list_meta(node, key)
        if isinstance(ov, dict) and isinstance(nv, dict) and ov and nv and (sub is None or not schema.is_free_form(sub)):
            c, r = _diff(ov, nv, sub, path, False)
            changed |= c
            removed |= r
        elif isinstance(ov, list) and isinstance(nv, list) and keys and all(isinstance(e, dict) for e in ov + nv):
            item = schema.items(sub)
            old_items = {_item_key(e, keys): e for e in ov}
            new_items = {_item_key(e, keys): e for e in nv}
            for k, e in new_items.items():
                if k not in old_items:
                    changed.add(path + (k, "."))
                    changed |= set(field_values(e, item, path + (k,), top=False))
                elif old_items[k] != e:
                    c, r = _diff(old_items[k], e, item, path + (k,), False)
                    changed |= c
                    removed |= r
            for k, e in old_items.items():
                if k not in new_items:
                    removed.add(path + (k, "."))
                    removed |= set(field_values(e, item, path + (k,), top=False))
        elif isinstance(ov, list) and isinstance(nv, list) and is_set:
            changed |= {path + ("v:" + _encode(e),) for e in nv if e not in ov}
            removed |= {path + ("v:" + _encode(e),) for e in ov if e not in nv}
        else:
            if ov is not _MISSING:
                removed |= set(field_values({key: ov}, node, prefix, top=False))
            if nv is not _MISSING:
                new_paths = set(field_values({key: nv}, node, prefix, top=False))
                changed |= new_paths
                removed -= new_paths
    return changed, removed


def _tree_has(tree: dict[str, Any], path: Path) -> bool:
    node: Any = tree
    for element in path:
        if not isinstance(node, dict) or element not in node:
            return False
        node = node[element]
    return True


def _tree_add(tree: dict[str, Any], path: Path) -> None:
    node = tree
    for element in path:
        node = node.setdefault(element, {})


def _tree_remove(tree: dict[str, Any], path: Path) -> None:
    """Remove a leaf path and the parents it leaves empty."""
    chain: list[tuple[dict[str, Any], str]] = []
    node: Any = tree
    for element in path:
        if not isinstance(node, dict) or element not in node:
            return
        chain.append((node, element))
        node = node[element]
    parent, element = chain.pop()
    del parent[element]
    for parent, element in reversed(chain):
        if parent[element]:
            break
        del parent[element]


def _status_values(obj: dict[str, Any] | None, node: schema.Schema | None) -> dict[Path, Any]:
    if not obj or not isinstance(obj.get("status"), dict):
        return {}
    return field_values(obj["status"], schema.child(node, "status"), ("f:status",), top=False)
