"""Kubernetes' own published object schemas (from the PyPI package ``kubernetes-validate``).

One read-only view of the v1.32 JSON-schema definitions, loaded lazily on first use and cached:
which fields a kind has (field validation), list merge keys and patch strategies (strategic merge
patch, server-side apply) and the documentation ``kubectl explain`` shows (OpenAPI v3). Pure data.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path
from typing import Any

import orjson

SCHEMA_VERSION = "v1.32.0"
_REF_PREFIX = "#/$defs/"

Schema = dict[str, Any]


def _schema_dir() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "kubernetes-json-schema" / f"{SCHEMA_VERSION}-local"


@functools.cache
def definitions() -> dict[str, Schema]:
    """Every definition by its OpenAPI name, e.g. ``io.k8s.api.core.v1.Pod``."""
    data = orjson.loads((_schema_dir() / "_definitions.json").read_bytes())
    return data["$defs"]


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            index.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return index


def definition_name(api_version: str, kind: str) -> str | None:
    """``("apps/v1", "Deployment")`` → ``io.k8s.api.apps.v1.Deployment`` (None when Kubernetes has no such kind)."""
    group, _, version = api_version.rpartition("/")
    return _gvk_index().get((group, version, kind))


def for_kind(api_version: str, kind: str) -> Schema | None:
    name = definition_name(api_version, kind)
    return definitions()[name] if name else None


def ref_name(node: Schema) -> str | None:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        return ref[len(_REF_PREFIX):]
    return None


def resolve(node: Schema | None) -> Schema | None:
    """Follow ``$ref`` (and a one-element ``allOf``) to the definition it names."""
    while node is not None:
        name = ref_name(node)
        if name is not None:
            node = definitions().get(name)
            continue
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            node = all_of[0]
            continue
        return node
    return None


def types(node: Schema) -> set[str]:
    t = node.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return set(t)
    return set()


def is_free_form(node: Schema) -> bool:
    """A node whose contents are not described (``FieldsV1``, ``RawExtension``, Quantity, ...)."""
    return ("properties" not in node and "additionalProperties" not in node and "items" not in node) or bool(
        node.get("x-kubernetes-preserve-unknown-fields"))


def property_schema(node: Schema | None, key: str) -> Schema | None:
    """The raw (unresolved) schema of property ``key`` of an object node, or of its map values."""
    if node is None:
        return None
    props = node.get("properties")
    if isinstance(props, dict) and key in props:
        return props[key]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    return None


_CHILD_CACHE: dict[tuple[int, str], Schema | None] = {}


def child(node: Schema | None, key: str) -> Schema | None:
    """The resolved schema of ``key`` inside ``node`` (None when unknown).

    Memoized by node identity: every node comes from the cached, never-mutated definitions.
    """
    if node is None:
        return None
    cache_key = (id(node), key)
    try:
        return _CHILD_CACHE[cache_key]
    except KeyError:
        result = _CHILD_CACHE[cache_key] = resolve(property_schema(node, key))
        return result


def items(node: Schema | None) -> Schema | None:
    """The resolved schema of a list's elements."""
    if node is None:
        return None
    it = node.get("items")
    return resolve(it) if isinstance(it, dict) else None


_PATCH_META_CACHE: dict[tuple[int, str], tuple[frozenset[str], str | None, str | None]] = {}


def patch_meta(node: Schema | None, key: str) -> tuple[frozenset[str], str | None, str | None]:
    """For field ``key`` of ``node``: (patch strategies, merge key, list type) as SMP and SSA use them."""
    cache_key = (id(node), key)
    found = _PATCH_META_CACHE.get(cache_key)
    if found is None:
        raw = property_schema(node, key) or {}
        strategies = frozenset(s for s in str(raw.get("x-kubernetes-patch-strategy", "")).split(",") if s)
        found = (strategies, raw.get("x-kubernetes-patch-merge-key"), raw.get("x-kubernetes-list-type"))
        if node is not None:
            _PATCH_META_CACHE[cache_key] = found
    return found


def clone(value: Any) -> Any:
    """A deep copy of a JSON value (orjson round trip; ``copy.deepcopy`` for what JSON cannot hold)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return copy.deepcopy(value)
