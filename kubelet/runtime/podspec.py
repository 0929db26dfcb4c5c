"""A v1 Pod manifest → CRI configs, for running pods by hand (``kubelite runtime run pod.yaml``). Pure.

The kubelet makes its own configs; this is the small subset a demo needs: command/args/env/workingDir,
resources (CPU limit → CFS quota, request → shares; memory limit), securityContext, hostPath and
emptyDir volumes, hostNetwork/hostPID/hostIPC, shareProcessNamespace, hostUsers, runtimeClassName.
Errors name the wrong field, as the apiserver would.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from kubelet import cri

OWNER_LABEL = "io.kubelite.owner"
CLI_OWNER = "kubelite-runtime-cli"
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 0.001}
_QTY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


class PodSpecError(ValueError):
    """The manifest is not a pod we can run; ``str()`` names the field."""


def quantity(value: object, field: str) -> float:
    m = _QTY.match(str(value))
    if not m:
        raise PodSpecError(f"{field}: invalid quantity {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


def milli_cpu(value: object, field: str) -> int:
    return int(round(quantity(value, field) * 1000))


@dataclass(frozen=True, slots=True)
class PodPlan:
    sandbox: cri.PodSandboxConfig
    containers: list[cri.ContainerConfig]
    handler: str
    empty_dirs: dict[str, str]  # volume name -> host dir to create (under volumes_root)


def qos_class(containers: list[dict[str, Any]]) -> str:
    requests = limits = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        requests = requests or bool(req)
        limits = limits or bool(lim)
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _security(sc: dict[str, Any], pod_sc: dict[str, Any], field: str) -> cri.LinuxSecurityContext:
    merged = {**pod_sc, **sc}
    caps = sc.get("capabilities") or {}
    return cri.LinuxSecurityContext(
        run_as_user=merged.get("runAsUser"), run_as_group=merged.get("runAsGroup"),
        run_as_non_root=bool(merged.get("runAsNonRoot", False)),
        supplemental_groups=tuple(pod_sc.get("supplementalGroups") or ()),
        privileged=bool(sc.get("privileged", False)), readonly_rootfs=bool(sc.get("readOnlyRootFilesystem", False)),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        capabilities=cri.Capabilities(add=tuple(caps.get("add") or ()), drop=tuple(caps.get("drop") or ())))


def plan(pod: dict[str, Any], log_root: str, volumes_root: str) -> PodPlan:
    """Translate ``pod`` (a parsed manifest) into what the RuntimeService needs."""
    if pod.get("kind") != "Pod":
        raise PodSpecError(f"kind: expected Pod, got {pod.get('kind')!r}")
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = md.get("name")
    if not name:
        raise PodSpecError("metadata.name: Required value")
    ns = md.get("namespace", "default")
    uid = md.get("uid") or str(uuid.uuid4())
    containers = spec.get("containers") or []
    if not containers:
        raise PodSpecError("spec.containers: Required value")
    qos = qos_class(containers)
    parent = {"Guaranteed": "kubepods", "Burstable": "kubepods/burstable", "BestEffort": "kubepods/besteffort"}[qos]
    pod_sc = spec.get("securityContext") or {}
    labels = dict(md.get("labels") or {}) | {OWNER_LABEL: CLI_OWNER, "io.kubernetes.pod.name": name,
                                              "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid}
    sandbox = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, namespace=ns, uid=uid),
        hostname=spec.get("hostname") or name, log_directory=f"{log_root}/{ns}_{name}_{uid}",
        cgroup_parent=f"{parent}/pod{uid}", labels=labels, annotations=dict(md.get("annotations") or {}),
        host_network=bool(spec.get("hostNetwork")), host_pid=bool(spec.get("hostPID")),
        host_ipc=bool(spec.get("hostIPC")), share_process_namespace=bool(spec.get("shareProcessNamespace")),
        host_users=spec.get("hostUsers", True) is not False)
    volumes: dict[str, str] = {}
    empty: dict[str, str] = {}
    for i, v in enumerate(spec.get("volumes") or []):
        if "hostPath" in v:
            volumes[v["name"]] = v["hostPath"]["path"]
        elif "emptyDir" in v:
            volumes[v["name"]] = empty[v["name"]] = f"{volumes_root}/{uid}/{v['name']}"
        else:
            raise PodSpecError(f"spec.volumes[{i}]: only hostPath and emptyDir are supported here")
    out = []
    for i, c in enumerate(containers):
        f = f"spec.containers[{i}]"
        if not c.get("name"):
            raise PodSpecError(f"{f}.name: Required value")
        if not c.get("image"):
            raise PodSpecError(f"{f}.image: Required value")
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        cpu_req, req_field = (req["cpu"], "requests") if "cpu" in req else (lim.get("cpu"), "limits")
        shares = max(2, milli_cpu(cpu_req, f"{f}.resources.{req_field}.cpu") * 1024 // 1000) if cpu_req else 2
        quota = max(1000, milli_cpu(lim["cpu"], f"{f}.resources.limits.cpu") * 100) if "cpu" in lim else 0
        mem = int(quantity(lim["memory"], f"{f}.resources.limits.memory")) if "memory" in lim else 0
        mounts = []
        for j, vm in enumerate(c.get("volumeMounts") or []):
            if vm.get("name") not in volumes:
                raise PodSpecError(f"{f}.volumeMounts[{j}].name: Not found: {vm.get('name')!r}")
            mounts.append(cri.Mount(container_path=vm["mountPath"], host_path=volumes[vm["name"]],
                                    readonly=bool(vm.get("readOnly"))))
        envs = []
        for j, e in enumerate(c.get("env") or []):
            if "valueFrom" in e:
                raise PodSpecError(f"{f}.env[{j}].valueFrom: not supported without the control plane")
            envs.append((e["name"], str(e.get("value", ""))))
        out.append(cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=c["name"]), image=c["image"],
            command=tuple(c.get("command") or ()), args=tuple(c.get("args") or ()),
            working_dir=c.get("workingDir", ""), envs=tuple(envs), mounts=tuple(mounts),
            labels={OWNER_LABEL: CLI_OWNER, "io.kubernetes.container.name": c["name"]},
            log_path=f"{c['name']}/0.log", tty=bool(c.get("tty")), stdin=bool(c.get("stdin")),
            resources=cri.LinuxResources(cpu_period=100000 if quota else 0, cpu_quota=quota, cpu_shares=shares,
                                         memory_limit_in_bytes=mem),
            security=_security(c.get("securityContext") or {}, pod_sc, f"{f}.securityContext")))
    return PodPlan(sandbox, out, spec.get("runtimeClassName") or "kubelite", empty)
