"""Label and field selectors as Kubernetes parses and matches them. Pure functions, no I/O.

Label selectors: the string form (``a=b,c!=d,e in (x,y),f notin (z),g,!h``, also ``==``, ``>``,
``<``) and the dict form of ``metav1.LabelSelector`` (``matchLabels``/``matchExpressions``).
Field selectors: ``f=v``, ``f==v``, ``f!=v`` joined by commas, over the field labels each
resource supports (:data:`FIELD_LABELS`, :func:`object_fields`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SelectorError(ValueError):
    """A selector string or dict that does not parse; the message is Kubernetes' wording."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str                     # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("gt", "lt"):
            try:
                n, bound = int(value or ""), int(self.values[0])
            except ValueError:
                return False
            return n > bound if self.op == "gt" else n < bound
        return False

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        sym = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{sym}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False       # a nil selector in some APIs matches nothing

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _check_key(key: str) -> str:
    if not key or len(key.split("/")[-1]) > 63 or not _KEY.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key \"{key}\": name part must consist of "
                            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(f"unable to parse requirement: invalid label value: \"{value}\": a valid label must be an "
                            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
                            "end with an alphanumeric character")
    return value


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unable to parse requirement: unexpected ')' in \"{text}\"")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SelectorError(f"unable to parse requirement: unbalanced '(' in \"{text}\"")
    parts.append("".join(cur))
    return parts


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the string form; ``""``/None selects everything. Raises :class:`SelectorError`."""
    if text is None or not text.strip():
        return LabelSelector()
    reqs: list[Requirement] = []
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"found '', expected: !, identifier, or 'end of string' in \"{text}\"")
        m = _SET_RE.match(part)
        if m:
            values = tuple(sorted({_check_value(v.strip()) for v in m.group(3).split(",")}))
            if m.group(3).strip() == "":
                raise SelectorError("unable to parse requirement: for 'in', 'notin' operators, values set can't be empty")
            reqs.append(Requirement(_check_key(m.group(1)), m.group(2), values))
            continue
        for sym, op in (("==", "="), ("!=", "!="), ("=", "="), (">", "gt"), ("<", "lt")):
            if sym in part:
                key, _, value = part.partition(sym)
                value = value.strip()
                if op in ("gt", "lt") and not value.lstrip("-").isdigit():
                    raise SelectorError("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer")
                reqs.append(Requirement(_check_key(key.strip()), op, (_check_value(value),)))
                break
        else:
            if part.startswith("!"):
                reqs.append(Requirement(_check_key(part[1:].strip()), "!"))
            elif " " in part:
                raise SelectorError(f"unable to parse requirement: found '{part.split()[1]}', expected: in, notin, =, ==, !=, gt, lt")
            else:
                reqs.append(Requirement(_check_key(part), "exists"))
    return LabelSelector(tuple(reqs))


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelector`` → :class:`LabelSelector`; None matches nothing, ``{}`` everything."""
    if sel is None:
        return LabelSelector(nothing=True)
    reqs: list[Requirement] = []
    for key, value in sorted((sel.get("matchLabels") or {}).items()):
        reqs.append(Requirement(_check_key(key), "=", (_check_value(str(value)),)))
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(f"\"{expr.get('operator')}\" is not a valid label selector operator")
        values = tuple(str(v) for v in expr.get("values") or [])
        if op in ("in", "notin") and not values:
            raise SelectorError("values: Required value: must be specified when `operator` is 'In' or 'NotIn'")
        if op in ("exists", "!") and values:
            raise SelectorError("values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        reqs.append(Requirement(_check_key(str(expr.get("key", ""))), op, values))
    return LabelSelector(tuple(reqs))


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """metav1.LabelSelector matching (matchLabels and In/NotIn/Exists/DoesNotExist expressions) on a
    stored, validated selector dict. ``None`` matches nothing, ``{}`` everything (as LabelSelectorAsSelector)."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or ():
        key, op, values = e.get("key", ""), e.get("operator", ""), e.get("values") or ()
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_to_string(sel: Mapping[str, Any] | None) -> str:
    """The string form of a ``metav1.LabelSelector`` dict (as in ``Scale.status.selector``)."""
    return str(label_selector_from_dict(sel)) if sel is not None else ""


# --- field selectors -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    op: str                    # "=" or "!="
    value: str


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for r in self.requirements:
            value = fields.get(r.field, "")
            if (value == r.value) != (r.op == "="):
                return False
        return True

    def exact(self, field: str) -> str | None:
        """The value ``field`` must equal, if the selector pins it (used to narrow storage reads)."""
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None


def parse_field_selector(text: str | None, allowed: Iterable[str] | None = None) -> FieldSelector:
    """Parse ``f=v,f!=v``; with ``allowed``, unknown fields raise ``field label not supported: f``."""
    if text is None or not text.strip():
        return FieldSelector()
    allowed_set = set(allowed) if allowed is not None else None
    reqs: list[FieldRequirement] = []
    for part in _split_escaped(text):
        for sym, op in (("!=", "!="), ("==", "="), ("=", "=")):
            if sym in part:
                field, _, value = part.partition(sym)
                field = field.strip()
                if allowed_set is not None and field not in allowed_set:
                    raise SelectorError(f"field label not supported: {field}")
                reqs.append(FieldRequirement(field, op, _unescape(value.strip())))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(tuple(reqs))


def _split_escaped(text: str) -> list[str]:
    parts, cur, esc = [], [], False
    for ch in text:
        if esc:
            cur.append("\\" + ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


_COMMON = ("metadata.name", "metadata.namespace")
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "pods": _COMMON + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                       "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "events": _COMMON + ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "nodes": _COMMON + ("spec.unschedulable",),
    "namespaces": _COMMON + ("status.phase",),
    "secrets": _COMMON + ("type",),
    "replicasets": _COMMON + ("status.replicas",),
}


def field_labels(resource: str) -> tuple[str, ...]:
    """The field labels a resource (plural name) can be selected by."""
    return FIELD_LABELS.get(resource, _COMMON)


def _dig(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def object_fields(resource: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The field-label values of ``obj`` (missing fields are ``""``, booleans ``true``/``false``)."""
    fields = {f: _dig(obj, f) for f in field_labels(resource)}
    if resource == "events":
        fields["source"] = _dig(obj, "source.component") or _dig(obj, "reportingComponent")
    if resource == "nodes" and fields.get("spec.unschedulable") == "":
        fields["spec.unschedulable"] = "false"
    if resource == "pods" and fields.get("spec.hostNetwork") == "":
        fields["spec.hostNetwork"] = "false"
    return fields
