"""The CRI-shaped seam between the kubelet (decides) and the runtime (does).

Small service Protocols, as Kubernetes' CRI has them (RuntimeService, ImageService), with plain
frozen dataclasses for what crosses the seam. The kubelet only ever calls these; the runtime in
``kubelet.runtime`` implements them, and a fake for unit tests lives beside the kubelet's tests.
Timestamps are Unix nanoseconds (int), as in CRI. No I/O here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import AsyncIterator, Mapping, Protocol, Sequence

from kubelite.api.errors import KubeliteError


# ---------------------------------------------------------------------------------------------- errors
class CriError(KubeliteError):
    """Root of the runtime's errors as the kubelet sees them."""


class NotFoundError(CriError):
    """No sandbox, container or image with that id/ref."""


class ImagePullError(CriError):
    """The pull failed (kubelet: ErrImagePull, then ImagePullBackOff). ``str()`` is the registry's message."""


class ImageNeverPullError(CriError):
    """policy Never and the image is not present (kubelet: ErrImageNeverPull)."""


class ImageInspectError(CriError):
    """The reference cannot be parsed (kubelet: InvalidImageName)."""


class CreateContainerError(CriError):
    """Creating the container failed (kubelet: CreateContainerError, or RunContainerError on start)."""


# ------------------------------------------------------------------------------------------ sandboxes
class PodSandboxState(StrEnum):
    READY = "SANDBOX_READY"
    NOTREADY = "SANDBOX_NOTREADY"


@dataclass(frozen=True, slots=True)
class PodSandboxMetadata:
    name: str
    namespace: str
    uid: str
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PodSandboxConfig:
    metadata: PodSandboxMetadata
    hostname: str
    log_directory: str                      # absolute; container log paths are relative to it
    cgroup_parent: str                      # relative to the node's cgroup root, e.g. "kubepods/burstable/pod<uid>"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    share_process_namespace: bool = False   # the sandbox then holds the pod's PID namespace too
    host_users: bool = True                 # False: a user namespace for the whole pod
    dns: DNSConfig | None = None            # None: the host's resolv.conf (ClusterFirst without cluster DNS)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    hosts_entries: tuple[tuple[str, str], ...] = ()  # extra /etc/hosts lines (ip, names)
    resources: LinuxResources | None = None  # the pod cgroup's: Kubernetes' ResourceConfigForPod


@dataclass(frozen=True, slots=True)
class PodSandboxStatus:
    id: str
    metadata: PodSandboxMetadata
    state: PodSandboxState
    created_at: int
    ip: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    runtime_handler: str = "kubelite"
    netns_path: str | None = None
    pid: int | None = None                  # the sandbox (pause) process on the host


# ------------------------------------------------------------------------------------------ containers
class ContainerState(StrEnum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"


@dataclass(frozen=True, slots=True)
class ContainerMetadata:
    name: str
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: str = "private"            # private | rslave | rshared
    selinux_relabel: bool = False


@dataclass(frozen=True, slots=True)
class LinuxResources:
    cpu_period: int = 0                     # µs; 0 = unset (100000 when a quota is set)
    cpu_quota: int = 0                      # µs; 0 = unlimited
    cpu_shares: int = 0                     # v1 shares (v2 weight derived from it); 0 = unset
    memory_limit_in_bytes: int = 0          # 0 = unlimited
    pids_limit: int = 0                     # 0 = unlimited
    cpuset_cpus: str = ""
    oom_score_adj: int = 0


@dataclass(frozen=True, slots=True)
class Capabilities:
    add: tuple[str, ...] = ()               # names as in Kubernetes ("NET_ADMIN"); "ALL" allowed
    drop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinuxSecurityContext:
    run_as_user: int | None = None          # None: the image's USER
    run_as_group: int | None = None
    run_as_username: str | None = None      # the image's non-numeric USER, resolved by the runtime
    run_as_non_root: bool = False           # refuse to start when the effective uid is 0
    supplemental_groups: tuple[int, ...] = ()
    privileged: bool = False
    readonly_rootfs: bool = False
    no_new_privs: bool = True               # allowPrivilegeEscalation=false (default true here as in Docker)
    capabilities: Capabilities = field(default_factory=Capabilities)


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    metadata: ContainerMetadata
    image: str                              # an image id or reference the ImageService resolved
    command: tuple[str, ...] = ()           # empty: the image's ENTRYPOINT
    args: tuple[str, ...] = ()              # empty: the image's CMD (when command is empty too)
    working_dir: str = ""                   # empty: the image's WORKDIR
    envs: tuple[tuple[str, str], ...] = ()  # already expanded by the kubelet; image ENV comes first
    mounts: tuple[Mount, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    log_path: str = ""                      # relative to the sandbox's log_directory
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: LinuxResources = field(default_factory=LinuxResources)
    security: LinuxSecurityContext = field(default_factory=LinuxSecurityContext)


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    id: str
    pod_sandbox_id: str
    metadata: ContainerMetadata
    state: ContainerState
    created_at: int
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""                        # "Completed" | "Error" | "OOMKilled" when exited
    message: str = ""
    image: str = ""                         # the reference asked for
    image_ref: str = ""                     # resolved: repo@sha256:… (status.imageID)
    image_id: str = ""                      # sha256:<config digest>
    log_path: str = ""                      # absolute
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    """What PLEG hears from the runtime besides its relists."""

    container_id: str
    pod_sandbox_id: str
    kind: str                               # "started" | "exited" | "created" | "deleted"
    at: int


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class ExecProcess(Protocol):
    """An interactive exec: streams wired to the process in the container."""

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader | None     # None with a tty (merged into stdout)

    async def wait(self) -> int: ...
    def resize(self, width: int, height: int) -> None: ...
    async def kill(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ContainerStats:
    container_id: str
    timestamp: int
    cpu_usage_ns: int = 0                   # cumulative
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0
    memory_rss_bytes: int = 0
    oom_events: int = 0
    cpu_throttled_periods: int = 0
    cpu_periods: int = 0
    cpu_throttled_ns: int = 0
    writable_layer_bytes: int = 0


class RuntimeService(Protocol):
    """Pods and containers. Every call is idempotent where CRI's is (stop/remove of a gone id is OK)."""

    async def version(self) -> dict[str, str]: ...

    async def run_pod_sandbox(self, config: PodSandboxConfig, runtime_handler: str = "") -> str: ...
    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...
    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...
    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str: ...
    async def start_container(self, container_id: str) -> None: ...
    async def stop_container(self, container_id: str, timeout: float) -> None: ...
    async def remove_container(self, container_id: str) -> None: ...
    async def container_status(self, container_id: str) -> ContainerStatus: ...
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: float) -> ExecResult: ...
    async def exec(self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool) -> ExecProcess: ...

    async def container_stats(self, container_id: str) -> ContainerStats: ...
    async def list_container_stats(self) -> list[ContainerStats]: ...

    def events(self) -> AsyncIterator[ContainerEvent]:
        """Container lifecycle events (exits above all) as they happen; never blocks the producer."""
        ...


# --------------------------------------------------------------------------------------------- images
@dataclass(frozen=True, slots=True)
class AuthConfig:
    username: str = ""
    password: str = ""
    auth: str = ""                          # base64 user:password, as in ~/.docker/config.json
    identity_token: str = ""
    registry_token: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    id: str                                 # sha256:<config digest>
    repo_tags: tuple[str, ...]              # docker.io/library/busybox:1.35
    repo_digests: tuple[str, ...]           # docker.io/library/busybox@sha256:…
    size: int
    uid: int | None = None                  # from the image config USER, when numeric
    username: str = ""


@dataclass(frozen=True, slots=True)
class FilesystemUsage:
    mountpoint: str
    used_bytes: int
    inodes_used: int
    capacity_bytes: int
    available_bytes: int


class ImageService(Protocol):
    async def pull_image(self, ref: str, auth: AuthConfig | None = None) -> str:
        """Pull ``ref``; returns the image id. Raises :class:`ImagePullError` with the registry's words."""
        ...

    async def image_status(self, ref: str) -> Image | None: ...
    async def list_images(self) -> list[Image]: ...
    async def remove_image(self, ref: str) -> None: ...
    async def image_fs_info(self) -> FilesystemUsage: ...
