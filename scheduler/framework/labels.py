"""Node selector matching as the scheduler needs it (pure functions).

Node selector terms: ``matchExpressions`` (In, NotIn, Exists, DoesNotExist, Gt, Lt) and ``matchFields``
on ``metadata.name``. Label selectors are
``kubelite.api.selectors.selector_matches``.
"""

from __future__ import annotations

from typing import Any, Mapping


def _expr_matches(labels: Mapping[str, str], key: str, op: str, values: list[str]) -> bool:
    has = key in labels
    if op == "In":
        return has and labels[key] in values
    if op == "NotIn":
        return not has or labels[key] not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt"):
        if not has or len(values) != 1:
            return False
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_selector_term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """One NodeSelectorTerm: all its expressions and fields must hold. An empty term matches nothing."""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    for e in exprs:
        if not _expr_matches(labels, e.get("key", ""), e.get("operator", ""), list(e.get("values") or ())):
            return False
    for f in fields:
        if f.get("key") != "metadata.name":
            return False
        if not _expr_matches({"metadata.name": meta.get("name", "")}, "metadata.name", f.get("operator", ""),
                             list(f.get("values") or ())):
            return False
    return True


def node_selector_matches(node_selector: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A NodeSelector: the terms are ORed."""
    return any(node_selector_term_matches(t, node) for t in node_selector.get("nodeSelectorTerms") or ())
