"""Turn a pod spec into the runtime's configs: ``PodSandboxConfig`` and each ``ContainerConfig``.

Labels carry what the kubelet needs to find its things again after a restart (pod uid/name/namespace,
container name, node), annotations carry the container's spec hash (a changed image restarts it),
restart count and termination-message settings. No I/O here: the ConfigMaps, Secrets, image facts and mounts are handed in.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

from kubelet.cri import (Capabilities, ContainerConfig, ContainerMetadata, DNSConfig, LinuxSecurityContext,
                         Mount, PodSandboxConfig, PodSandboxMetadata)
from kubelet.envvars import ContainerConfigError, Sources, expand_args, make_environment
from kubelet.qos import container_resources, pod_cgroup_parent, pod_resources

LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_NODE = "kubelite.io/node"
LABEL_MANAGED_BY = "kubelite.io/managed-by"
MANAGED_BY = "kubelet"
ANN_HASH = "io.kubernetes.container.hash"
ANN_RESTART_COUNT = "io.kubernetes.container.restartCount"
ANN_TERMINATION_PATH = "io.kubernetes.container.terminationMessagePath"
ANN_TERMINATION_POLICY = "io.kubernetes.container.terminationMessagePolicy"
ANN_TERMINATION_HOST_PATH = "kubelite.io/termination-message-host-path"
ANN_CONTAINER_TYPE = "kubelite.io/container-type"   # "init" | "app"


def container_hash(container: Mapping[str, Any]) -> str:
    """What makes a running container out of date: its image (the only mutable container field)."""
    return hashlib.sha256(str(container.get("image", "")).encode()).hexdigest()[:16]


def pod_labels(pod: Mapping[str, Any], node_name: str) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    return {LABEL_POD_UID: meta.get("uid", ""), LABEL_POD_NAME: meta.get("name", ""),
            LABEL_POD_NAMESPACE: meta.get("namespace", "default"), LABEL_NODE: node_name,
            LABEL_MANAGED_BY: MANAGED_BY}


def sandbox_config(pod: Mapping[str, Any], node_name: str, log_root: str, attempt: int,
                   annotations: Mapping[str, str] | None = None) -> PodSandboxConfig:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ns, name, uid = meta.get("namespace", "default"), meta.get("name", ""), meta.get("uid", "")
    hostname = spec.get("hostname") or name
    if spec.get("hostNetwork"):
        hostname = node_name
    dns = None
    dns_cfg = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None" and dns_cfg:
        dns = DNSConfig(servers=tuple(dns_cfg.get("nameservers") or ()),
                        searches=tuple(dns_cfg.get("searches") or ()),
                        options=tuple(o.get("name", "") + (f":{o['value']}" if o.get("value") else "")
                                      for o in dns_cfg.get("options") or ()))
    sc = spec.get("securityContext") or {}
    hosts = tuple((h.get("ip", ""), " ".join(h.get("hostnames") or ())) for h in spec.get("hostAliases") or ())
    labels = pod_labels(pod, node_name)
    labels.update({k: v for k, v in (meta.get("labels") or {}).items() if k not in labels})
    return PodSandboxConfig(
        metadata=PodSandboxMetadata(name=name, namespace=ns, uid=uid, attempt=attempt),
        hostname=hostname[:63],
        log_directory=f"{log_root}/{ns}_{name}_{uid}",
        cgroup_parent=pod_cgroup_parent(pod),
        resources=pod_resources(pod),
        labels=labels,
        annotations=dict(annotations or {}),
        host_network=bool(spec.get("hostNetwork")),
        host_pid=bool(spec.get("hostPID")),
        host_ipc=bool(spec.get("hostIPC")),
        share_process_namespace=bool(spec.get("shareProcessNamespace")),
        host_users=spec.get("hostUsers", True) is not False,
        dns=dns,
        sysctls={s.get("name", ""): str(s.get("value", "")) for s in sc.get("sysctls") or ()},
        hosts_entries=hosts,
    )


def security_context(pod: Mapping[str, Any], container: Mapping[str, Any],
                     image_uid: int | None = None, image_user: str = "") -> LinuxSecurityContext:
    """Container securityContext over the pod's defaults; raises :class:`ContainerConfigError` on runAsNonRoot."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return csc[key] if csc.get(key) is not None else psc.get(key)

    run_as_user = pick("runAsUser")
    run_as_group = pick("runAsGroup")
    non_root = bool(pick("runAsNonRoot"))
    privileged = bool(csc.get("privileged"))
    if non_root:
        uid = run_as_user if run_as_user is not None else image_uid
        if uid is None and image_user and not image_user.isdigit():
            raise ContainerConfigError(f"container has runAsNonRoot and image has non-numeric user "
                                       f"({image_user}), cannot verify user is non-root")
        if uid is None and not image_user:
            uid = 0
        if uid == 0:
            raise ContainerConfigError("container has runAsNonRoot and image will run as root")
    caps = csc.get("capabilities") or {}
    ape = csc.get("allowPrivilegeEscalation")
    no_new_privs = ape is False if not privileged else False
    groups = tuple(int(g) for g in psc.get("supplementalGroups") or ())
    if psc.get("fsGroup") is not None:
        groups += (int(psc["fsGroup"]),)
    return LinuxSecurityContext(
        run_as_user=int(run_as_user) if run_as_user is not None else None,
        run_as_group=int(run_as_group) if run_as_group is not None else None,
        run_as_username=image_user if run_as_user is None and image_user and not image_user.isdigit() else None,
        run_as_non_root=non_root,
        supplemental_groups=groups,
        privileged=privileged,
        readonly_rootfs=bool(csc.get("readOnlyRootFilesystem")),
        no_new_privs=no_new_privs,
        capabilities=Capabilities(add=tuple(caps.get("add") or ()), drop=tuple(caps.get("drop") or ())),
    )


def container_config(pod: Mapping[str, Any], container: Mapping[str, Any], *, image_ref: str, attempt: int,
                     node_name: str, sources: Sources, mounts: Sequence[Mount], init: bool,
                     termination_host_path: str = "", image_uid: int | None = None,
                     image_user: str = "") -> ContainerConfig:
    """The CRI config of one container. Raises :class:`ContainerConfigError` (CreateContainerConfigError)."""
    env = make_environment(pod, container, sources)
    env_map = dict(env)
    name = container.get("name", "")
    labels = pod_labels(pod, node_name)
    labels[LABEL_CONTAINER_NAME] = name
    all_mounts = list(mounts)
    term_path = container.get("terminationMessagePath") or "/dev/termination-log"
    if termination_host_path:
        all_mounts.append(Mount(container_path=term_path, host_path=termination_host_path))
    annotations = {
        ANN_HASH: container_hash(container),
        ANN_RESTART_COUNT: str(attempt),
        ANN_TERMINATION_PATH: term_path,
        ANN_TERMINATION_POLICY: container.get("terminationMessagePolicy") or "File",
        ANN_TERMINATION_HOST_PATH: termination_host_path,
        ANN_CONTAINER_TYPE: "init" if init else "app",
    }
    return ContainerConfig(
        metadata=ContainerMetadata(name=name, attempt=attempt),
        image=image_ref,
        command=expand_args(container.get("command"), env_map),
        args=expand_args(container.get("args"), env_map),
        working_dir=container.get("workingDir") or "",
        envs=tuple(env),
        mounts=tuple(all_mounts),
        labels=labels,
        annotations=annotations,
        log_path=f"{name}/{attempt}.log",
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        resources=container_resources(container, pod),
        security=security_context(pod, container, image_uid, image_user),
    )
