"""Canonical forms Kubernetes writes back: every ``resource.Quantity`` field as its canonical string.

kube-apiserver decodes quantities and re-encodes them, so ``cpu: 1000m`` is stored and returned as
``"1"``, ``0.5`` as ``"500m"`` and ``1024Ki`` as ``"1Mi"``. Which fields are quantities comes from
the schemas (a plan per definition, computed once); a value that does not parse is left for
validation to report.
"""

from __future__ import annotations

import functools
from typing import Any

from kubelite.api import quantity, schema

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

# A plan maps a property to how its value holds quantities:
#   ("q", None)      the value is a quantity
#   ("map", None)    a map whose values are quantities (limits, capacity, ...)
#   ("obj", name)    an object of definition ``name`` that holds quantities somewhere
#   ("list", name)   a list of such objects
Plan = dict[str, tuple[str, str | None]]


def _target(node: dict[str, Any]) -> tuple[str, str | None] | None:
    name = schema.ref_name(node)
    if name is None and isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
        name = schema.ref_name(node["allOf"][0])
    if name == QUANTITY:
        return ("q", None)
    if name is not None:
        return ("obj", name) if _plan(name) else None
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and schema.ref_name(extra) == QUANTITY:
        return ("map", None)
    items = node.get("items")
    if isinstance(items, dict):
        item_name = schema.ref_name(items)
        if item_name is not None and item_name != QUANTITY and _plan(item_name):
            return ("list", item_name)
    return None


_IN_PROGRESS: set[str] = set()


@functools.cache
def _plan_cached(name: str) -> tuple[tuple[str, str, str | None], ...]:
    node = schema.definitions().get(name) or {}
    out = []
    for prop, sub in (node.get("properties") or {}).items():
        if isinstance(sub, dict) and (target := _target(sub)) is not None:
            out.append((prop, target[0], target[1]))
    return tuple(out)


def _plan(name: str) -> tuple[tuple[str, str, str | None], ...]:
    if name in _IN_PROGRESS:  # a cycle: it holds quantities only through paths found elsewhere
        return ()
    _IN_PROGRESS.add(name)
    try:
        return _plan_cached(name)
    finally:
        _IN_PROGRESS.discard(name)


def _canonical(value: Any) -> Any:
    try:
        return quantity.canonical(value)
    except ValueError:
        return value


_PLANS: dict[str, tuple[tuple[str, str, str | None], ...]] = {}


def _walk(obj: Any, name: str) -> None:
    if not isinstance(obj, dict):
        return
    plan = _PLANS.get(name)
    if plan is None:                  # outside a plan's construction, _plan is pure: remember it
        plan = _PLANS[name] = _plan(name)
    for prop, how, target in plan:
        value = obj.get(prop)
        if value is None:
            continue
        if how == "q":
            obj[prop] = _canonical(value)
        elif how == "map" and isinstance(value, dict):
            for key, q in value.items():
                value[key] = _canonical(q)
        elif how == "obj" and target:
            _walk(value, target)
        elif how == "list" and target and isinstance(value, list):
            for item in value:
                _walk(item, target)


def canonicalize_quantities(obj: dict[str, Any], api_version: str, kind: str) -> None:
    """Rewrite every quantity field of ``obj`` (of the given kind) in canonical form, in place."""
    name = schema.definition_name(api_version, kind)
    if name is not None:
        _walk(obj, name)
