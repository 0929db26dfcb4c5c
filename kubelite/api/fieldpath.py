"""FieldsV1 field paths of objects: sets, trees, values at paths, and diffs (structured-merge-diff's fieldpath).

A path is a tuple of FieldsV1 elements: ``f:<field>``, ``k:{"name":"c"}`` (a list item by its map keys,
sorted), ``v:"x"`` (a set member) and ``.`` (the list item itself). List map keys and sets come from
Kubernetes' schemas. Pure functions; used by :mod:`kubelite.api.managedfields`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from kubelite.api import schema
from kubelite.api.jsonmemo import JsonMemo, compact

Path = tuple[str, ...]
SKIP_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
             "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"}
MISSING = object()


_META_CACHE: dict[tuple[int, str], tuple[list[str] | None, bool]] = {}


def list_meta(node: schema.Schema | None, key: str) -> tuple[list[str] | None, bool]:
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
    return list_meta(node, key)[0]


def _is_set(node: schema.Schema | None, key: str) -> bool:
    return list_meta(node, key)[1]


def encode(value: Any) -> str:
    return orjson.dumps(value).decode()


# Defaults of list-map key fields (published as schema defaults in Kubernetes' OpenAPI): an applied
# ``ports: [{containerPort: 80}]`` item is the live ``{containerPort: 80, protocol: TCP}`` one.
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}


def _item_key(item: dict[str, Any], keys: list[str]) -> str:
    """``k:{"containerPort":80,"protocol":"TCP"}`` (keys sorted, as Kubernetes writes them)."""
    parts = []
    for k in keys:
        if k in item:
            parts.append(f'"{k}":{encode(item[k])}')
        elif len(keys) > 1 and k in KEY_DEFAULTS:
            parts.append(f'"{k}":{encode(KEY_DEFAULTS[k])}')
    return "k:{" + ",".join(parts) + "}"


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
            value = {k: v for k, v in value.items() if k not in SKIP_META}
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
                out[path + ("v:" + encode(e),)] = True
        else:
            out[path] = value
    return out


_Slot = tuple[str, Any, bool, "list[str] | None", bool, Any]
_TREE_TABLES: dict[int, dict[str, _Slot]] = {}


def _tree_slot(node: schema.Schema | None, key: str) -> _Slot:
    """``(f:key, child schema, descend into a dict?, list map keys, is a set, list item schema)``."""
    sub = schema.child(node, key)
    keys, is_set = list_meta(node, key)
    return f"f:{key}", sub, sub is None or not schema.is_free_form(sub), keys, is_set, schema.items(sub)


def _tree(obj: dict[str, Any], node: schema.Schema | None, out: dict[str, Any]) -> dict[str, Any]:
    """Add the FieldsV1 tree of ``obj`` (below the top level) to ``out``; the slots of ``node``'s
    fields are memoized per node (one table lookup per object, one dict lookup per field)."""
    table = _TREE_TABLES.get(id(node))
    if table is None:
        table = _TREE_TABLES[id(node)] = {}
    for key, value in obj.items():
        slot = table.get(key)
        if slot is None:
            slot = table[key] = _tree_slot(node, key)
        fkey, sub, descend, keys, is_set, item = slot
        if not value:
            out[fkey] = {}
        elif isinstance(value, dict):
            out[fkey] = (_spec_tree(value, sub) if key == "spec" else _tree(value, sub, {})) if descend else {}
        elif isinstance(value, list):
            if keys and all(isinstance(e, dict) for e in value):
                out[fkey] = {_item_key(e, keys): _tree(e, item, {".": {}}) for e in value}
            elif is_set:
                out[fkey] = {"v:" + encode(e): {} for e in value}
            else:
                out[fkey] = {}
        else:
            out[fkey] = {}
    return out


_SPEC_TREES: JsonMemo[bytes] = JsonMemo()


def _spec_tree(spec: dict[str, Any], node: schema.Schema | None) -> dict[str, Any]:
    """:func:`_tree` of a ``spec``, memoized by its JSON (a controller's objects share one spec); a
    fresh copy each time."""
    key = _SPEC_TREES.key(spec)
    if key is None:
        return _tree(spec, node, {})
    found = _SPEC_TREES.get(id(node), key)
    if found is None:
        tree = _tree(spec, node, {})
        _SPEC_TREES.put(id(node), key, compact(orjson.dumps(tree)))
        return tree
    return orjson.loads(found)  # type: ignore[no-any-return]


def fields_tree(obj: Any, node: schema.Schema | None, top: bool = True) -> dict[str, Any]:
    """The FieldsV1 tree of an object directly (same paths as :func:`field_values`, built faster)."""
    if not isinstance(obj, dict):
        return {}
    if not top:
        return _tree(obj, node, {})
    body: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in SKIP_META}
            if not value:
                continue
        body[key] = value
    return _tree(body, node, {})


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


def get_path(obj: Any, path: Path) -> Any:
    for element in path:
        if element == ".":
            continue
        kind, _, rest = element.partition(":")
        if kind == "f" and isinstance(obj, dict):
            obj = obj.get(rest, MISSING)
        elif kind == "k" and isinstance(obj, list):
            want = json.loads(rest)
            obj = next((e for e in obj if isinstance(e, dict) and all(e.get(k) == v for k, v in want.items())),
                       MISSING)
        elif kind == "v" and isinstance(obj, list):
            value = json.loads(rest)
            obj = value if value in obj else MISSING
        else:
            return MISSING
        if obj is MISSING:
            return MISSING
    return obj


def remove_path(obj: Any, path: Path) -> None:
    if path and path[-1] == ".":
        path = path[:-1]
    parent = get_path(obj, path[:-1]) if len(path) > 1 else obj
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "k" and isinstance(parent, list):
        want = json.loads(rest)
        parent[:] = [e for e in parent if not (isinstance(e, dict) and all(e.get(k) == v for k, v in want.items()))]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(rest)
        parent[:] = [e for e in parent if e != value]


def prune_empty(obj: dict[str, Any], path: Path) -> None:
    """Drop maps the removal emptied (``labels: {}``), as Go's omitempty would not serialize them."""
    fields = [p for p in path if p != "."]
    for depth in range(len(fields) - 1, 0, -1):
        parent_path = tuple(fields[:depth])
        if not all(e.startswith("f:") for e in parent_path):
            return
        value = get_path(obj, parent_path)
        if isinstance(value, dict) and not value:
            remove_path(obj, parent_path)
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


def diff(old: Any, new: Any, node: schema.Schema | None, prefix: Path, top: bool) -> tuple[set[Path], set[Path]]:
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
        ov, nv = old.get(key, MISSING), new.get(key, MISSING)
        if top and key == "metadata":
            ov = {k: v for k, v in ov.items() if k not in SKIP_META} if isinstance(ov, dict) else {}
            nv = {k: v for k, v in nv.items() if k not in SKIP_META} if isinstance(nv, dict) else {}
        if ov == nv:
            continue
        path = prefix + (f"f:{key}",)
        sub = schema.child(node, key)
        keys, is_set = list_meta(node, key)
        if isinstance(ov, dict) and isinstance(nv, dict) and ov and nv and (sub is None or not schema.is_free_form(sub)):
            c, r = diff(ov, nv, sub, path, False)
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
                    c, r = diff(old_items[k], e, item, path + (k,), False)
                    changed |= c
                    removed |= r
            for k, e in old_items.items():
                if k not in new_items:
                    removed.add(path + (k, "."))
                    removed |= set(field_values(e, item, path + (k,), top=False))
        elif isinstance(ov, list) and isinstance(nv, list) and is_set:
            changed |= {path + ("v:" + encode(e),) for e in nv if e not in ov}
            removed |= {path + ("v:" + encode(e),) for e in ov if e not in nv}
        else:
            if ov is not MISSING:
                removed |= set(field_values({key: ov}, node, prefix, top=False))
            if nv is not MISSING:
                new_paths = set(field_values({key: nv}, node, prefix, top=False))
                changed |= new_paths
                removed -= new_paths
    return changed, removed


def tree_has(tree: dict[str, Any], path: Path) -> bool:
    node: Any = tree
    for element in path:
        if not isinstance(node, dict) or element not in node:
            return False
        node = node[element]
    return True


def tree_add(tree: dict[str, Any], path: Path) -> None:
    node = tree
    for element in path:
        node = node.setdefault(element, {})


def tree_remove(tree: dict[str, Any], path: Path) -> None:
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
