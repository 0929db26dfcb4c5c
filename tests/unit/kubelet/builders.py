"""Small builders of pods and runtime states for the kubelet's table tests."""

from __future__ import annotations

from typing import Any

from kubelet.containerconfig import ANN_HASH, container_hash
from kubelet.cri import (ContainerMetadata, ContainerState, ContainerStatus, PodSandboxMetadata, PodSandboxState,
                         PodSandboxStatus)
from kubelet.planner import RuntimePod

S = 1_000_000_000


def pod(*names: str, init: tuple[str, ...] = (), policy: str = "Always", image: str = "busybox",
        **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n, "image": image} for n in names],
                            "restartPolicy": policy, "nodeName": "n1"}
    if init:
        spec["initContainers"] = [{"name": n, "image": image} for n in init]
    spec.update(extra)
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}, "spec": spec, "status": {}}


def sandbox(id: str = "sb1", attempt: int = 0, ready: bool = True, ip: str | None = "10.0.0.5",
            created: int = 1) -> PodSandboxStatus:
    return PodSandboxStatus(id, PodSandboxMetadata("p", "default", "u1", attempt),
                            PodSandboxState.READY if ready else PodSandboxState.NOTREADY, created, ip)


def ctr(name: str, state: str = "running", code: int = 0, attempt: int = 0, id: str | None = None,
        image: str = "busybox", created: int | None = None, finished: int = 0, reason: str = "") -> ContainerStatus:
    st = {"running": ContainerState.RUNNING, "exited": ContainerState.EXITED,
          "created": ContainerState.CREATED}[state]
    return ContainerStatus(id or f"{name}-{attempt}", "sb1", ContainerMetadata(name, attempt), st,
                           created if created is not None else 10 + attempt, started_at=20 * S,
                           finished_at=finished or (30 * S if state == "exited" else 0), exit_code=code,
                           reason=reason, image=image, image_ref=f"{image}@sha256:ab",
                           annotations={ANN_HASH: container_hash({"image": image})})


def rp(*containers: ContainerStatus, sandboxes: tuple = ()) -> RuntimePod:
    return RuntimePod.of("u1", list(sandboxes), list(containers))
