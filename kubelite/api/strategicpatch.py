"""Strategic merge patch (k8s.io/apimachinery strategicpatch) and kubectl's client-side-apply three-way merge.

List merge keys and patch strategies come from Kubernetes' schemas (``x-kubernetes-patch-merge-key``,
``x-kubernetes-patch-strategy``) via :mod:`kubelite.api.schema`. Directives: ``$patch``
(replace/delete/merge), ``$retainKeys``, ``$setElementOrder/<field>``, ``$deleteFromPrimitiveList/<field>``.
Pure functions; malformed patches raise :class:`~kubelite.api.errors.BadRequest`.
"""

from __future__ import annotations

from typing import Any

from kubelite.api import schema
from kubelite.api.errors import BadRequest

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
Node = schema.Schema | None


def root_schema(obj: dict[str, Any], api_version: str | None = None, kind: str | None = None) -> Node:
    av = api_version or obj.get("apiVersion")
    kd = kind or obj.get("kind")
    return schema.for_kind(str(av), str(kd)) if av and kd else None


def strategic_merge_patch(original: dict[str, Any], patch: Any, api_version: str | None = None,
                          kind: str | None = None, *, schema_node: Node = None) -> dict[str, Any]:
    """Apply a strategic merge patch to a copy of ``original``.

    The schema is Kubernetes' for ``api_version``/``kind`` (read from ``original`` unless given), or
    ``schema_node`` (tests); without one, lists are replaced as in a JSON merge patch.
    """
    if not isinstance(patch, dict):
        raise BadRequest("strategic merge patch: the patch must be a JSON object")
    node = schema_node if schema_node is not None else root_schema(original, api_version, kind)
    merged = _merge_map(schema.clone(original) if isinstance(original, dict) else {}, patch, node)
    return merged if merged is not None else {}


def _clean(value: Any, node: Node) -> Any:
    """A patch value added where nothing was: directives processed against an empty original."""
    if isinstance(value, dict):
        merged = _merge_map({}, value, node)
        return merged if merged is not None else {}
    if isinstance(value, list):
        item = schema.items(node)
        return [_clean(v, item) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return value


def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: Node) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` (mutated) and return it (mergeMap in strategicpatch)."""
    directive = patch.get("$patch")
    if directive == "replace":
        return _clean({k: v for k, v in patch.items() if k != "$patch"}, node)
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise BadRequest(f'strategic merge patch: unknown patch type: "{directive}" in map')
    orders: dict[str, list[Any]] = {}
    if "$retainKeys" in patch:
        retain = patch["$retainKeys"]
        if not isinstance(retain, list):
            raise BadRequest("strategic merge patch: $retainKeys must be a list")
        for key in [k for k in original if k not in retain]:
            del original[key]
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE):]
            if not isinstance(value, list):
                raise BadRequest(f"strategic merge patch: {key} must be a list")
            if isinstance(original.get(field), list):
                original[field] = [x for x in original[field] if x not in value]
        elif key.startswith(_ORDER):
            if not isinstance(value, list):
                raise BadRequest(f"strategic merge patch: {key} must be a list")
            orders[key[len(_ORDER):]] = value
    before = {f: list(original[f]) for f in orders if isinstance(original.get(f), list)}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            original.pop(key, None)
            continue
        strategies, merge_key, _ = schema.patch_meta(node, key)
        sub = schema.child(node, key)
        current = original.get(key)
        if "replace" in strategies:
            original[key] = _clean(value, sub)
        elif isinstance(value, dict):
            original[key] = _merge_map(current if isinstance(current, dict) else {}, value, sub)
        elif isinstance(value, list):
            if "merge" in strategies:
                if key in orders:
                    _check_order(value, orders[key], merge_key, key)
                original[key] = _merge_list(current if isinstance(current, list) else [], value, merge_key,
                                            schema.items(sub))
            else:
                original[key] = _clean(value, sub)
        else:
            original[key] = value
    for field, order in orders.items():
        if isinstance(original.get(field), list):
            _, merge_key, _ = schema.patch_meta(node, field)
            original[field] = _reorder(original[field], order, before.get(field, []), merge_key)
    return original


def _key_of(item: Any, merge_key: str | None) -> Any:
    return item.get(merge_key) if merge_key and isinstance(item, dict) else item


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str | None, field: str) -> None:
    """The patch list must follow ``$setElementOrder`` (validateMergeKeyInLists / order check)."""
    order_keys = [_key_of(o, merge_key) for o in order]
    positions = [order_keys.index(_key_of(e, merge_key)) for e in patch_list
                 if not (isinstance(e, dict) and "$patch" in e) and _key_of(e, merge_key) in order_keys]
    if positions != sorted(positions):
        raise BadRequest(f"strategic merge patch: the order of the list {field} in the patch doesn't match "
                         f"$setElementOrder/{field}")


def _merge_list(original: list[Any], patch: list[Any], merge_key: str | None, item: Node) -> list[Any]:
    """mergeSlice: merge by key (or union of scalars), then patch elements in patch order."""
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [_clean(e, item) for e in patch if not (isinstance(e, dict) and e.get("$patch") == "replace")]
    out = list(original)
    if merge_key is None:  # scalars: union, duplicates removed
        if any(isinstance(e, dict) and "$patch" in e for e in patch):
            raise BadRequest("strategic merge patch: $patch is not allowed in a list of primitives")
        for e in patch:
            if e not in out:
                out.append(e)
        deduped: list[Any] = []
        for e in out:
            if e not in deduped:
                deduped.append(e)
        return _reorder(deduped, patch, original, None)
    live_patch: list[Any] = []
    for e in patch:
        if not isinstance(e, dict):
            raise BadRequest(f"strategic merge patch: list elements must be maps with the merge key {merge_key}")
        if merge_key not in e:
            raise BadRequest(f"map: {e} does not contain declared merge key: {merge_key}")
        key = e[merge_key]
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(merge_key) == key), None)
        if e.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        live_patch.append(e)
        if idx is None:
            out.append(_clean(e, item))
        else:
            out[idx] = _merge_map(out[idx], e, item)
    return _reorder(out, live_patch, original, merge_key)


def _reorder(merged: list[Any], order: list[Any], server: list[Any], merge_key: str | None) -> list[Any]:
    """normalizeElementOrder + mergeSortedSlice: the elements named in ``order`` in that order, with the
    server-only elements slotted in before a patch element only when both sit in ``server`` (the list
    before the patch) in that order; otherwise the patch element comes first."""
    order_keys = [_key_of(o, merge_key) for o in order]
    server_keys = [_key_of(o, merge_key) for o in server]
    patch_items = sorted((e for e in merged if _key_of(e, merge_key) in order_keys),
                         key=lambda e: order_keys.index(_key_of(e, merge_key)))
    server_only = [e for e in merged if _key_of(e, merge_key) not in order_keys]
    out: list[Any] = []
    i = j = 0
    while i < len(patch_items) or j < len(server_only):
        if i >= len(patch_items):
            out.append(server_only[j]); j += 1
        elif j >= len(server_only):
            out.append(patch_items[i]); i += 1
        else:
            pk, sk = _key_of(patch_items[i], merge_key), _key_of(server_only[j], merge_key)
            if pk in server_keys and sk in server_keys and server_keys.index(sk) < server_keys.index(pk):
                out.append(server_only[j]); j += 1
            else:
                out.append(patch_items[i]); i += 1
    return out


# --- three-way merge (kubectl apply, client side) -------------------------------------------------

def three_way_merge_patch(original: dict[str, Any] | None, modified: dict[str, Any], current: dict[str, Any],
                          api_version: str | None = None, kind: str | None = None, *,
                          schema_node: Node = None) -> dict[str, Any]:
    """The patch ``kubectl apply`` sends: changes from ``current`` to ``modified`` plus deletions of what
    ``original`` (the last-applied configuration) had and ``modified`` dropped. ``{}`` means unchanged."""
    node = schema_node if schema_node is not None else root_schema(modified, api_version, kind)
    delta = _diff_maps(current, modified, node, ignore_deletions=True, ignore_changes=False)
    deletions = _diff_maps(original or {}, modified, node, ignore_deletions=False, ignore_changes=True)
    return _merge_patches(deletions, delta, node)


def _diff_maps(orig: dict[str, Any], mod: dict[str, Any], node: Node, *, ignore_deletions: bool,
               ignore_changes: bool, retain: bool = False) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, mv in mod.items():
        if key not in orig:
            if not ignore_changes:
                patch[key] = mv
            continue
        ov = orig[key]
        if ov == mv:
            continue
        strategies, merge_key, _ = schema.patch_meta(node, key)
        if isinstance(ov, dict) and isinstance(mv, dict):
            sub = _diff_maps(ov, mv, schema.child(node, key), ignore_deletions=ignore_deletions,
                             ignore_changes=ignore_changes, retain="retainKeys" in strategies)
            if sub:
                patch[key] = sub
        elif isinstance(ov, list) and isinstance(mv, list) and "merge" in strategies:
            _diff_list(patch, key, ov, mv, merge_key, schema.items(schema.child(node, key)),
                       "retainKeys" in strategies, ignore_deletions=ignore_deletions, ignore_changes=ignore_changes)
        elif not ignore_changes:
            patch[key] = mv
    if not ignore_deletions:
        for key in orig:
            if key not in mod:
                patch[key] = None
    if patch and retain:
        patch["$retainKeys"] = sorted(mod)
    return patch


def _diff_list(patch: dict[str, Any], key: str, ov: list[Any], mv: list[Any], merge_key: str | None, item: Node,
               retain: bool, *, ignore_deletions: bool, ignore_changes: bool) -> None:
    """diffLists: additions/changes in ``mv`` order, deletions last, and ``$setElementOrder`` when the
    lists differ in content or order (or, for the deletions pass, when something was deleted)."""
    if not ov:
        if mv and not ignore_changes:
            patch[key] = list(mv)
        return
    if merge_key is None or not all(isinstance(e, dict) for e in ov + mv):
        added = [x for x in mv if x not in ov] if not ignore_changes else []
        removed = [x for x in ov if x not in mv] if not ignore_deletions else []
        if added:
            patch[key] = added
        if removed:
            patch[_DELETE_PRIMITIVE + key] = removed
        if mv and (removed or (not ignore_changes and ov != mv)):
            patch[_ORDER + key] = list(mv)
        return
    by_key = {o.get(merge_key): o for o in ov}
    mod_keys = {e.get(merge_key) for e in mv}
    items: list[Any] = []
    for e in mv:
        o = by_key.get(e.get(merge_key))
        if o is None:
            if not ignore_changes:
                items.append(e)
        elif o != e:
            sub = _diff_maps(o, e, item, ignore_deletions=ignore_deletions, ignore_changes=ignore_changes,
                             retain=retain)
            if sub:
                sub[merge_key] = e.get(merge_key)
                items.append(sub)
    if not ignore_deletions:
        items += [{"$patch": "delete", merge_key: o.get(merge_key)} for o in ov if o.get(merge_key) not in mod_keys]
    order_same = [o.get(merge_key) for o in ov] == [e.get(merge_key) for e in mv]
    if mv and ((not ignore_changes and (items or not order_same)) or (not ignore_deletions and items)):
        patch[_ORDER + key] = [{merge_key: e.get(merge_key)} for e in mv]
    if items:
        patch[key] = items


def _merge_patches(a: dict[str, Any], b: dict[str, Any], node: Node) -> dict[str, Any]:
    """Combine two patches (``b`` wins); merge-keyed lists combine element by element."""
    out = schema.clone(a)
    for key, bv in b.items():
        av = out.get(key)
        if key == "$retainKeys" and isinstance(av, list) and isinstance(bv, list):
            out[key] = sorted(set(av) | set(bv))
        elif key.startswith(_DELETE_PRIMITIVE) and isinstance(av, list) and isinstance(bv, list):
            out[key] = av + [x for x in bv if x not in av]
        elif isinstance(av, dict) and isinstance(bv, dict):
            out[key] = _merge_patches(av, bv, schema.child(node, key))
        elif isinstance(av, list) and isinstance(bv, list) and not key.startswith("$"):
            strategies, merge_key, _ = schema.patch_meta(node, key)
            if "merge" in strategies and merge_key:
                item = schema.items(schema.child(node, key))
                merged = list(av)
                for e in bv:
                    idx = next((i for i, x in enumerate(merged) if isinstance(x, dict) and isinstance(e, dict)
                                and x.get(merge_key) == e.get(merge_key)), None)
                    if idx is None:
                        merged.append(e)
                    else:
                        merged[idx] = _merge_patches(merged[idx], e, item)
                out[key] = merged
            elif "merge" in strategies:
                out[key] = av + [x for x in bv if x not in av]
            else:
                out[key] = schema.clone(bv)
        else:
            out[key] = schema.clone(bv)
    return out
