"""Validation shared by every kind: names, object metadata, labels, selectors, quantities.

Messages are Kubernetes' own (k8s.io/apimachinery/pkg/util/validation and
pkg/apis/core/validation), so ``kubectl`` prints what users know. Each check returns
:class:`~kubelite.api.errors.StatusCause` entries; nothing here raises.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Iterable

from kubelite.api import quantity
from kubelite.api.errors import StatusCause, duplicate, forbidden_field, not_supported, required
from kubelite.api.selectors import selector_matches  # noqa: F401  (re-exported: registry code calls v.selector_matches)

Causes = list[StatusCause]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_RE = re.compile(f"^{_LABEL}$")
DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_QNAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_IANA_SVC_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                     "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                         "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                         "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
QNAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
ENV_NAME_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
                "and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex "
                "used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                  "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
TOTAL_ANNOTATION_SIZE = 256 * 1024
IMMUTABLE = "field is immutable"


def go_value(value: Any) -> str:
    """A value as Kubernetes prints it in field errors (Go's ``%#v`` for the shapes we have)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in value.items()):
        return "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(x)}" for k, x in sorted(value.items())) + "}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def invalid_value(field: str, value: Any, why: str) -> StatusCause:
    """``field: Invalid value: <value>: why`` with the value shown as Kubernetes shows it."""
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {go_value(value)}: {why}", "field": field}


def not_found(field: str, value: Any) -> StatusCause:
    return {"reason": "FieldValueNotFound", "message": f'Not found: "{value}"', "field": field}


def too_long(field: str, limit: int) -> StatusCause:
    return {"reason": "FieldValueTooLong", "message": f"Too long: must have at most {limit} bytes", "field": field}


def type_invalid(field: str, value: Any, why: str) -> StatusCause:
    return {"reason": "FieldValueTypeInvalid", "message": f"Invalid value: {value!r}: {why}", "field": field}


def dns1123_label(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not DNS1123_LABEL_RE.match(value):
        errs.append(DNS1123_LABEL_MSG)
    return errs


def dns1123_subdomain(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(DNS1123_SUBDOMAIN_MSG)
    return errs


def qualified_name(value: Any) -> list[str]:
    """Label/annotation keys: ``[prefix/]name``."""
    if not isinstance(value, str):
        return ["must be a string"]
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        errs = [f"prefix part {m}" for m in dns1123_subdomain(prefix)]
        if errs:
            return errs
    else:
        return ["a qualified name " + QNAME_MSG.replace("name part must", "must")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        return ["name part must be non-empty"]
    errs = []
    if len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QNAME_RE.match(name):
        errs.append(QNAME_MSG)
    return errs


def label_value(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


def name_check(field: str, value: Any, check: Any) -> Causes:
    return [invalid_value(field, value, m) for m in check(value)]


# The same few label keys, values and names recur in every object: remember which strings are valid
# (a bounded cache of booleans; an invalid one is checked in full again to word its causes).

@functools.lru_cache(maxsize=8192)
def valid_qualified_name(value: str) -> bool:
    return not qualified_name(value)


@functools.lru_cache(maxsize=8192)
def valid_label_value(value: str) -> bool:
    return not label_value(value)


@functools.lru_cache(maxsize=8192)
def valid_dns1123_label(value: str) -> bool:
    return not dns1123_label(value)


def env_name_valid(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and _ENV_NAME_RE.match(value) is not None


def labels(field: str, value: Any) -> Causes:
    causes: Causes = []
    if value is None:
        return causes
    if not isinstance(value, dict):
        return [invalid_value(field, value, "must be a map of strings")]
    for k, v in value.items():
        if not (isinstance(k, str) and valid_qualified_name(k)):
            causes += [invalid_value(field, k, m) for m in qualified_name(k)]
        if not (isinstance(v, str) and valid_label_value(v)):
            causes += [invalid_value(f"{field}", v, m) for m in label_value(v)]
    return causes


def annotations(field: str, value: Any) -> Causes:
    causes: Causes = []
    if value is None:
        return causes
    if not isinstance(value, dict):
        return [invalid_value(field, value, "must be a map of strings")]
    total = 0
    for k, v in value.items():
        key = k.lower() if isinstance(k, str) else k
        if not (isinstance(key, str) and valid_qualified_name(key)):
            causes += [invalid_value(field, k, m) for m in qualified_name(key)]
        if not isinstance(v, str):
            causes.append(invalid_value(f"{field}[{k}]", v, "must be a string"))
        total += len(str(k)) + len(str(v))
    if total > TOTAL_ANNOTATION_SIZE:
        causes.append(too_long(field, TOTAL_ANNOTATION_SIZE))
    return causes


def object_meta(meta: Any, *, namespaced: bool, name_fn: Any = dns1123_subdomain) -> Causes:
    """ValidateObjectMeta: name/generateName, namespace scope, labels, annotations, finalizers, owners."""
    if not isinstance(meta, dict):
        return [required("metadata")]
    causes: Causes = []
    name, gen = meta.get("name"), meta.get("generateName")
    if not name and not gen:
        causes.append({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                       "field": "metadata.name"})
    if name:
        causes += name_check("metadata.name", name, name_fn)
    if gen and not name:
        # generateName must be a valid name prefix (trailing '-' allowed)
        causes += name_check("metadata.generateName", gen, lambda v: name_fn(str(v).rstrip("-") or "a"))
    ns = meta.get("namespace")
    if namespaced:
        if not ns:
            causes.append(required("metadata.namespace"))
        elif not (isinstance(ns, str) and valid_dns1123_label(ns)):
            causes += name_check("metadata.namespace", ns, dns1123_label)
    elif ns:
        causes.append(forbidden_field("metadata.namespace", "not allowed on this type"))
    causes += labels("metadata.labels", meta.get("labels"))
    causes += annotations("metadata.annotations", meta.get("annotations"))
    for i, f in enumerate(meta.get("finalizers") or []):
        causes += [invalid_value(f"metadata.finalizers[{i}]", f, m) for m in qualified_name(f)]
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref, dict) or not ref.get(key):
                causes.append(required(f"metadata.ownerReferences[{i}].{key}"))
    controllers = [r for r in meta.get("ownerReferences") or [] if isinstance(r, dict) and r.get("controller")]
    if len(controllers) > 1:
        causes.append(invalid_value("metadata.ownerReferences", controllers,
                                    "Only one reference can have Controller set to true"))
    return causes


def object_meta_update(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    causes: Causes = []
    nm, om = new.get("metadata") or {}, old.get("metadata") or {}
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if om.get(key) is not None and nm.get(key) != om.get(key):
            causes.append(invalid_value(f"metadata.{key}", nm.get(key), IMMUTABLE))
    return causes


def label_selector(field: str, selector: Any) -> Causes:
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [invalid_value(field, selector, "must be a label selector")]
    causes = labels(f"{field}.matchLabels", selector.get("matchLabels"))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        f = f"{field}.matchExpressions[{i}]"
        op = expr.get("operator") if isinstance(expr, dict) else None
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            causes.append(not_supported(f"{f}.operator", op, ["In", "NotIn", "Exists", "DoesNotExist"]))
            continue
        values = expr.get("values") or []
        if op in ("In", "NotIn") and not values:
            causes.append(required(f"{f}.values"))
        if op in ("Exists", "DoesNotExist") and values:
            causes.append(forbidden_field(f"{f}.values", "may not be specified when `operator` is 'Exists' or "
                                          "'DoesNotExist'"))
        causes += [invalid_value(f"{f}.key", expr.get("key"), m) for m in qualified_name(expr.get("key"))]
    return causes


def non_negative(field: str, value: Any) -> Causes:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid_value(field, value, "must be an integer")]
    return [invalid_value(field, value, "must be greater than or equal to 0")] if value < 0 else []


def positive(field: str, value: Any) -> Causes:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid_value(field, value, "must be an integer")]
    return [invalid_value(field, value, "must be greater than 0")] if value <= 0 else []


def valid_quantity(value: Any) -> Any:
    """The value of a valid non-negative quantity, else None (then :func:`quantity_value` words the cause)."""
    try:
        q = quantity.parse(value)
    except ValueError:
        return None
    return q.value if q.value.numerator >= 0 else None


def quantity_value(field: str, value: Any) -> tuple[Causes, Any]:
    try:
        q = quantity.parse(value)
    except ValueError as e:
        return [invalid_value(field, value, str(e))], None
    if q.value.numerator < 0:             # a Fraction's sign is its numerator's (no slow compare)
        return [invalid_value(field, value, "must be greater than or equal to 0")], None
    return [], q.value


def unique(field: str, values: Iterable[Any]) -> Causes:
    seen: set[Any] = set()
    causes: Causes = []
    for i, v in enumerate(values):
        if v in seen:
            causes.append(duplicate(f"{field}[{i}]", v))
        seen.add(v)
    return causes


def env_name(field: str, value: Any) -> Causes:
    if not value:
        return [required(field)]
    return [] if isinstance(value, str) and _ENV_NAME_RE.match(value) else [invalid_value(field, value, ENV_NAME_MSG)]


def config_key(field: str, key: Any) -> Causes:
    causes: Causes = []
    if not isinstance(key, str) or not _CONFIG_KEY_RE.match(key):
        causes.append(invalid_value(field, key, CONFIG_KEY_MSG))
    elif len(key) > 253:
        causes.append(invalid_value(field, key, "must be no more than 253 characters"))
    elif key in (".", "..") or key.startswith(".."):
        causes.append(invalid_value(field, key, "must not be '.' or '..'" if key in (".", "..")
                                    else "must not start with '..'"))
    return causes


def port_name(field: str, value: Any) -> Causes:
    if not isinstance(value, str) or len(value) > 15 or not _IANA_SVC_RE.match(value) or "--" in value \
            or not re.search("[a-z]", value):
        return [invalid_value(field, value, "must be no more than 15 characters, contain only lowercase "
                              "alphanumeric characters or '-', contain at least one letter, start and end with "
                              "an alphanumeric character and not contain consecutive '-'")]
    return []
