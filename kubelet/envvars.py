"""A container's environment: ``env``/``envFrom`` with ``$(VAR)`` expansion and the downward API.

Follows Kubernetes' ``makeEnvironmentVariables`` and the forked ``expansion`` package: envFrom
sources first (in order, with prefix, keys that are not valid names skipped), then ``env`` in order,
each value expanded against the variables defined before it; ``$$`` escapes, an unknown ``$(X)``
stays as written. ConfigMaps and Secrets are handed in (already fetched), so this is pure.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kubelet.qos import resource_value

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ContainerConfigError(Exception):
    """What the kubelet reports as ``CreateContainerConfigError`` (the message is shown as-is)."""


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: ``$$`` → ``$``, an unknown or unclosed reference stays literal."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(value)
    while cursor < n:
        if value[cursor] == "$" and cursor + 1 < n:
            out.append(value[checkpoint:cursor])
            nxt = value[cursor + 1]
            if nxt == "$":
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = value.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = value[cursor + 2:close]
                    found = lookup(name)
                    out.append(found if found is not None else f"$({name})")
                    advance = close - cursor
            else:
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(value[checkpoint:])
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Sources:
    """What the environment may read: the pod's ConfigMaps and Secrets by name, and node facts."""

    configmaps: Mapping[str, Mapping[str, Any]]
    secrets: Mapping[str, Mapping[str, Any]]
    pod_ip: str = ""
    host_ip: str = ""
    node_allocatable: Mapping[str, str] | None = None


def configmap_data(cm: Mapping[str, Any]) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v)
    return data


def secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    for k, v in (secret.get("stringData") or {}).items():
        data[k] = v.encode()
    return data


def _format_map(m: Mapping[str, str]) -> str:
    return "\n".join(f'{k}="{v}"' for k, v in sorted(m.items()))


def field_ref_value(pod: Mapping[str, Any], path: str, sources: Sources) -> str:
    """``metadata.name``, ``metadata.labels['app']``, ``spec.nodeName``, ``status.podIP``, ..."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = re.match(r"^metadata\.(labels|annotations)\['(.*)'\]$", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: meta.get("name", ""),
        "metadata.namespace": lambda: meta.get("namespace", "default"),
        "metadata.uid": lambda: meta.get("uid", ""),
        "metadata.labels": lambda: _format_map(meta.get("labels") or {}),
        "metadata.annotations": lambda: _format_map(meta.get("annotations") or {}),
        "spec.nodeName": lambda: spec.get("nodeName", ""),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName", ""),
        "status.podIP": lambda: sources.pod_ip,
        "status.podIPs": lambda: sources.pod_ip,
        "status.hostIP": lambda: sources.host_ip,
        "status.hostIPs": lambda: sources.host_ip,
    }
    if path not in simple:
        raise ContainerConfigError(f"unsupported fieldPath: {path}")
    return simple[path]()


def resource_field_ref_value(pod: Mapping[str, Any], container: Mapping[str, Any], ref: Mapping[str, Any],
                             sources: Sources) -> str:
    target = container
    name = ref.get("containerName")
    if name:
        spec = pod.get("spec") or {}
        matches = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                   if c.get("name") == name]
        if not matches:
            raise ContainerConfigError(f"container {name!r} not found in pod for resourceFieldRef")
        target = matches[0]
    divisor = ref.get("divisor")
    return resource_value(target, ref.get("resource", ""), str(divisor) if divisor is not None else None,
                          sources.node_allocatable)


def _lookup_key(kind: str, ns: str, store: Mapping[str, Mapping[str, Any]], ref: Mapping[str, Any]) -> str | None:
    name = ref.get("name", "")
    optional = bool(ref.get("optional"))
    obj = store.get(name)
    if obj is None:
        if optional:
            return None
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    data = configmap_data(obj) if kind == "ConfigMap" else secret_data(obj)
    key = ref.get("key", "")
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {ns}/{name}")
    return data[key].decode(errors="replace")


def make_environment(pod: Mapping[str, Any], container: Mapping[str, Any], sources: Sources) -> list[tuple[str, str]]:
    """The container's env as ordered (name, value) pairs. Raises :class:`ContainerConfigError`."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            ref, kind, store = src["configMapRef"], "ConfigMap", sources.configmaps
        elif "secretRef" in src:
            ref, kind, store = src["secretRef"], "Secret", sources.secrets
        else:
            continue
        obj = store.get(ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
        data = configmap_data(obj) if kind == "ConfigMap" else secret_data(obj)
        for k, v in data.items():
            name = prefix + k
            if _ENV_NAME.match(name):
                env[name] = v.decode(errors="replace")
    for var in container.get("env") or []:
        name = var.get("name", "")
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env.get)
            continue
        vf = var["valueFrom"]
        value: str | None
        if "fieldRef" in vf:
            value = field_ref_value(pod, vf["fieldRef"].get("fieldPath", ""), sources)
        elif "resourceFieldRef" in vf:
            value = resource_field_ref_value(pod, container, vf["resourceFieldRef"], sources)
        elif "configMapKeyRef" in vf:
            value = _lookup_key("ConfigMap", ns, sources.configmaps, vf["configMapKeyRef"])
        elif "secretKeyRef" in vf:
            value = _lookup_key("Secret", ns, sources.secrets, vf["secretKeyRef"])
        else:
            value = None
        if value is not None:
            env[name] = value
    return list(env.items())


def expand_args(items: list[str] | None, env: Mapping[str, str]) -> tuple[str, ...]:
    """``command``/``args`` expansion against the container's final environment."""
    return tuple(expand(str(a), env.get) for a in (items or []))


def referenced_objects(pod: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets the pod's env, envFrom and volumes use."""
    spec = pod.get("spec") or {}
    cms: set[str] = set()
    secrets: set[str] = set()
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for src in c.get("envFrom") or []:
            if "configMapRef" in src:
                cms.add(src["configMapRef"].get("name", ""))
            if "secretRef" in src:
                secrets.add(src["secretRef"].get("name", ""))
        for var in c.get("env") or []:
            vf = var.get("valueFrom") or {}
            if "configMapKeyRef" in vf:
                cms.add(vf["configMapKeyRef"].get("name", ""))
            if "secretKeyRef" in vf:
                secrets.add(vf["secretKeyRef"].get("name", ""))
    for vol in spec.get("volumes") or []:
        if "configMap" in vol:
            cms.add(vol["configMap"].get("name", ""))
        if "secret" in vol:
            secrets.add(vol["secret"].get("secretName", ""))
        for src in (vol.get("projected") or {}).get("sources") or []:
            if "configMap" in src:
                cms.add(src["configMap"].get("name", ""))
            if "secret" in src:
                secrets.add(src["secret"].get("name", ""))
    for s in spec.get("imagePullSecrets") or []:
        secrets.add(s.get("name", ""))
    return cms, secrets
