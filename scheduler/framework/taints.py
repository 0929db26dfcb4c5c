"""Taint/toleration matching (kube's ``v1helper.TolerationsTolerateTaint``). Pure functions."""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def toleration_tolerates(tol: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Does one toleration tolerate one taint (effect, key, operator Exists/Equal)?"""
    effect = tol.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = tol.get("key") or ""
    op = tol.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if op == "Exists":
        return True
    if not key:  # an empty key requires operator Exists
        return False
    return (tol.get("value") or "") == (taint.get("value") or "")


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations)


def first_untolerated(taints: Iterable[Mapping[str, Any]], tolerations: list[Mapping[str, Any]],
                      effects: tuple[str, ...]) -> Mapping[str, Any] | None:
    """The first taint with one of ``effects`` no toleration tolerates, or None."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None
