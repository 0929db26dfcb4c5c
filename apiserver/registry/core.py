"""The smaller kinds: Node, Namespace, Event, ConfigMap, Secret, Lease, RuntimeClass (defaults and validation)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from apiserver.registry import validation as v
from kubelite.api.errors import BadRequest, forbidden_field, not_supported, required

Causes = v.Causes
MAX_DATA_SIZE = 1024 * 1024
TAINT_EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"]


# --- Node ---
def default_node(obj: dict[str, Any]) -> None:
    """SetDefaults_NodeStatus: allocatable defaults to capacity."""
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


def validate_node(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    causes: Causes = []
    for i, taint in enumerate(spec.get("taints") or []):
        f = f"spec.taints[{i}]"
        if not isinstance(taint, dict) or not taint.get("key"):
            causes.append(required(f"{f}.key"))
            continue
        causes += [v.invalid_value(f"{f}.key", taint["key"], m) for m in v.qualified_name(taint["key"])]
        if taint.get("effect") not in TAINT_EFFECTS:
            causes.append(not_supported(f"{f}.effect", taint.get("effect"), TAINT_EFFECTS)
                          if taint.get("effect") else required(f"{f}.effect"))
    return causes


def validate_node_update(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    old_cidr = (old.get("spec") or {}).get("podCIDR")
    new_cidr = (new.get("spec") or {}).get("podCIDR")
    if old_cidr and new_cidr != old_cidr:
        return [forbidden_field("spec.podCIDR", 'node updates may not change podCIDR except from "" to valid')]
    return []


# --- Namespace ---
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def label_namespace(obj: dict[str, Any]) -> None:
    """Every namespace carries the immutable label ``kubernetes.io/metadata.name: <name>``."""
    meta = obj.setdefault("metadata", {})
    if isinstance(meta, dict) and meta.get("name"):
        labels = meta.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        labels[NAMESPACE_NAME_LABEL] = meta["name"]
        meta["labels"] = labels


def default_namespace(obj: dict[str, Any]) -> None:
    label_namespace(obj)
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict) and "kubernetes" not in (spec.get("finalizers") or []):
        spec["finalizers"] = list(spec.get("finalizers") or []) + ["kubernetes"]


def namespace_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {"phase": "Active"}


def prepare_namespace_update(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Finalizers of the spec change only through the finalize subresource; the name label stays."""
    new["spec"] = old.get("spec", {})
    label_namespace(new)


def validate_namespace(obj: dict[str, Any]) -> Causes:
    causes: Causes = []
    for i, f in enumerate((obj.get("spec") or {}).get("finalizers") or []):
        if f != "kubernetes":
            causes += [v.invalid_value(f"spec.finalizers[{i}]", f, m) for m in v.qualified_name(f)]
    return causes


# --- Event ---
def validate_event(obj: dict[str, Any]) -> Causes:
    causes: Causes = []
    ns = (obj.get("metadata") or {}).get("namespace")
    inv = obj.get("involvedObject")
    if not isinstance(inv, dict):
        return [required("involvedObject")]
    inv_ns = inv.get("namespace")
    if inv_ns and ns and inv_ns != ns:
        causes.append(v.invalid_value("involvedObject.namespace", inv_ns, "does not match event.namespace"))
    if obj.get("type") not in (None, "", "Normal", "Warning"):
        causes.append(not_supported("type", obj.get("type"), ["Normal", "Warning"]))
    if len(str(obj.get("message") or "")) > 1024 * 4:
        causes.append(v.too_long("message", 4096))
    return causes


# --- ConfigMap / Secret ---
def _validate_keys(data: Any, field: str, sizes: list[int]) -> Causes:
    causes: Causes = []
    if data is None:
        return causes
    if not isinstance(data, dict):
        return [v.invalid_value(field, data, "must be a map")]
    for key, value in data.items():
        causes += v.config_key(field, key)
        sizes.append(len(str(value)))
    return causes


def validate_configmap(obj: dict[str, Any]) -> Causes:
    sizes: list[int] = []
    causes = _validate_keys(obj.get("data"), "data", sizes) + _validate_keys(obj.get("binaryData"), "binaryData", sizes)
    for key in (obj.get("binaryData") or {}):
        if key in (obj.get("data") or {}):
            causes.append(v.invalid_value("data", key, "duplicate of key present in binaryData"))
    if sum(sizes) > MAX_DATA_SIZE:
        causes.append(v.too_long("", MAX_DATA_SIZE))
    return causes


def validate_immutable_data(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    causes: Causes = []
    if old.get("immutable"):
        if new.get("immutable") is not True:
            causes.append(forbidden_field("immutable", "field is immutable when `immutable` is set"))
        for key in ("data", "binaryData"):
            if new.get(key) != old.get(key):
                causes.append(forbidden_field(key, "field is immutable when `immutable` is set"))
    return causes


def default_secret(obj: dict[str, Any]) -> None:
    """type Opaque; stringData folded into data (base64) as the v1 conversion does; data must be base64."""
    obj.setdefault("type", "Opaque")
    data = obj.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(value, str):
                raise BadRequest(f'Secret in version "v1" cannot be handled as a Secret: data[{key}]: '
                                 "expected a base64 string")
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as e:
                raise BadRequest(f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data '
                                 f"in data[{key}]: {e}") from None
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def validate_secret(obj: dict[str, Any]) -> Causes:
    sizes: list[int] = []
    causes = _validate_keys(obj.get("data"), "data", sizes)
    if sum(sizes) > MAX_DATA_SIZE:
        causes.append(v.too_long("data", MAX_DATA_SIZE))
    stype = obj.get("type")
    data = obj.get("data") or {}
    if stype == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        causes.append(required("data[.dockerconfigjson]"))
    if stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                causes.append(required(f"data[{key}]"))
    return causes


def validate_secret_update(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    causes = validate_immutable_data(new, old)
    if new.get("type") != old.get("type"):
        causes.append(v.invalid_value("type", new.get("type"), v.IMMUTABLE))
    return causes


# --- Lease ---
def validate_lease(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec") or {}
    causes = v.positive("spec.leaseDurationSeconds", spec.get("leaseDurationSeconds"))
    causes += v.non_negative("spec.leaseTransitions", spec.get("leaseTransitions"))
    return causes


# --- RuntimeClass ---
def validate_runtimeclass(obj: dict[str, Any]) -> Causes:
    handler = obj.get("handler")
    if not handler:
        return [required("handler")]
    return v.name_check("handler", handler, v.dns1123_label)


def validate_runtimeclass_update(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    if new.get("handler") != old.get("handler"):
        return [v.invalid_value("handler", new.get("handler"), v.IMMUTABLE)]
    return []
