"""In-memory fakes of the CRI services for the kubelet's tests (and anyone driving a kubelet without
containers): :class:`FakeRuntime` and :class:`FakeImageService`. Calls are recorded in ``calls``.

Containers do not run anything: a test makes one exit with :meth:`FakeRuntime.exit`, which also
emits an ``exited`` event as a real runtime's shim would.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace
from typing import AsyncIterator, Sequence

from kubelet.cri import (AuthConfig, ContainerConfig, ContainerEvent, ContainerState, ContainerStats,
                         ContainerStatus, ExecProcess, ExecResult, FilesystemUsage, Image, ImagePullError,
                         ImageNeverPullError, NotFoundError, PodSandboxConfig, PodSandboxState,
                         PodSandboxStatus)

_ids = itertools.count(1)


def _now() -> int:
    return time.time_ns()


class FakeRuntime:
    """A RuntimeService that keeps sandboxes and containers in dicts."""

    def __init__(self) -> None:
        self.sandboxes: dict[str, PodSandboxStatus] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self.calls: list[tuple[str, object]] = []
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}
        self.fail_create: set[str] = set()        # container names whose create fails
        self.exec_processes: list["FakeExecProcess"] = []
        self._events: asyncio.Queue[ContainerEvent] = asyncio.Queue()
        self._ip = itertools.count(2)

    async def version(self) -> dict[str, str]:
        return {"runtimeName": "fake", "runtimeVersion": "0.1"}

    async def run_pod_sandbox(self, config: PodSandboxConfig, runtime_handler: str = "") -> str:
        sid = f"sb{next(_ids)}"
        self.calls.append(("run_pod_sandbox", config.metadata.name))
        ip = None if config.host_network else f"10.244.0.{next(self._ip)}"
        self.sandboxes[sid] = PodSandboxStatus(sid, config.metadata, PodSandboxState.READY, _now(), ip,
                                               dict(config.labels), dict(config.annotations),
                                               runtime_handler or "kubelite")
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("stop_pod_sandbox", sandbox_id))
        sb = self.sandboxes.get(sandbox_id)
        if sb is None:
            return
        for c in list(self.containers.values()):
            if c.pod_sandbox_id == sandbox_id and c.state == ContainerState.RUNNING:
                self.exit(c.id, 137, "Error")
        self.sandboxes[sandbox_id] = replace(sb, state=PodSandboxState.NOTREADY)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("remove_pod_sandbox", sandbox_id))
        await self.stop_pod_sandbox(sandbox_id) if sandbox_id in self.sandboxes else None
        self.sandboxes.pop(sandbox_id, None)
        for cid in [c.id for c in self.containers.values() if c.pod_sandbox_id == sandbox_id]:
            del self.containers[cid]

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise NotFoundError(sandbox_id) from None

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return list(self.sandboxes.values())

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        self.calls.append(("create_container", config.metadata.name))
        if config.metadata.name in self.fail_create:
            from kubelet.cri import CreateContainerError
            raise CreateContainerError(f"cannot create {config.metadata.name}")
        cid = f"c{next(_ids)}"
        self.containers[cid] = ContainerStatus(cid, sandbox_id, config.metadata, ContainerState.CREATED, _now(),
                                               image=config.image, image_ref=f"{config.image}@sha256:00",
                                               log_path=f"{sandbox_config.log_directory}/{config.log_path}",
                                               labels=dict(config.labels), annotations=dict(config.annotations))
        self.configs = getattr(self, "configs", {})
        self.configs[cid] = config
        return cid

    async def start_container(self, container_id: str) -> None:
        self.calls.append(("start_container", container_id))
        c = self.containers[container_id]
        self.containers[container_id] = replace(c, state=ContainerState.RUNNING, started_at=_now())
        self._events.put_nowait(ContainerEvent(container_id, c.pod_sandbox_id, "started", _now()))

    def exit(self, container_id: str, code: int, reason: str = "") -> None:
        """Make a running container exit (test helper)."""
        c = self.containers[container_id]
        self.containers[container_id] = replace(c, state=ContainerState.EXITED, finished_at=_now(),
                                                exit_code=code,
                                                reason=reason or ("Completed" if code == 0 else "Error"))
        self._events.put_nowait(ContainerEvent(container_id, c.pod_sandbox_id, "exited", _now()))

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self.calls.append(("stop_container", container_id))
        c = self.containers.get(container_id)
        if c is not None and c.state == ContainerState.RUNNING:
            self.exit(container_id, 137, "Error")

    async def remove_container(self, container_id: str) -> None:
        self.calls.append(("remove_container", container_id))
        self.containers.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        try:
            return self.containers[container_id]
        except KeyError:
            raise NotFoundError(container_id) from None

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c for c in self.containers.values() if sandbox_id is None or c.pod_sandbox_id == sandbox_id]

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: float) -> ExecResult:
        self.calls.append(("exec_sync", tuple(cmd)))
        return self.exec_results.get(tuple(cmd), ExecResult(0, b"", b""))

    async def exec(self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool) -> ExecProcess:
        """``cat`` echoes stdin to stdout until EOF; anything else prints its exec_results and exits."""
        self.calls.append(("exec", tuple(cmd)))
        proc = FakeExecProcess(tuple(cmd), self.exec_results.get(tuple(cmd), ExecResult(0, b"", b"")),
                               tty=tty, stdin=stdin)
        self.exec_processes.append(proc)
        return proc

    async def container_stats(self, container_id: str) -> ContainerStats:
        return ContainerStats(container_id, _now())

    async def list_container_stats(self) -> list[ContainerStats]:
        return [ContainerStats(c, _now()) for c in self.containers]

    async def events(self) -> AsyncIterator[ContainerEvent]:  # type: ignore[override]
        while True:
            yield await self._events.get()


class _Sink:
    """A minimal StreamWriter stand-in feeding a StreamReader (the fake process's stdin)."""

    def __init__(self, target: asyncio.StreamReader) -> None:
        self.target = target

    def write(self, data: bytes) -> None:
        self.target.feed_data(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.target.feed_eof()


class FakeExecProcess:
    def __init__(self, cmd: tuple[str, ...], result: ExecResult, *, tty: bool, stdin: bool) -> None:
        self.cmd = cmd
        self.stdout = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self.sizes: list[tuple[int, int]] = []
        self._code = result.exit_code
        self._done = asyncio.Event()
        if cmd == ("cat",) and stdin:
            self.stdin = _Sink(self.stdout)  # type: ignore[assignment]
            self._echo = True
        else:
            self.stdin = None
            self._echo = False
            self.stdout.feed_data(result.stdout)
            self.stdout.feed_eof()
            if self.stderr is not None:
                self.stderr.feed_data(result.stderr)
            self._done.set()
        if self.stderr is not None and self._echo:
            self.stderr.feed_eof()
        elif self.stderr is not None:
            self.stderr.feed_eof()

    async def wait(self) -> int:
        if self._echo:
            while not self.stdout.at_eof():
                await asyncio.sleep(0.01)
        await self._done.wait() if not self._echo else None
        return self._code

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def kill(self) -> None:
        if self._echo and not self.stdout.at_eof():
            self.stdout.feed_eof()
        self._done.set()


class FakeImageService:
    """An ImageService with a set of present images; ``pull_errors`` makes pulls of a ref fail."""

    def __init__(self, present: Sequence[str] = ()) -> None:
        self.present: dict[str, Image] = {}
        self.pulls: list[tuple[str, AuthConfig | None]] = []
        self.pull_errors: dict[str, str] = {}
        self.removed: list[str] = []
        self.fs = FilesystemUsage("/fake", 0, 0, 100, 100)
        for ref in present:
            self._add(ref)

    def _add(self, ref: str) -> Image:
        img = Image(f"sha256:{abs(hash(ref)):064x}"[:71], (ref,), (f"{ref}@sha256:00",), 1000)
        self.present[ref] = img
        return img

    async def pull_image(self, ref: str, auth: AuthConfig | None = None) -> str:
        self.pulls.append((ref, auth))
        if ref in self.pull_errors:
            raise ImagePullError(self.pull_errors[ref])
        return self._add(ref).id

    async def image_status(self, ref: str) -> Image | None:
        if ref in self.present:
            return self.present[ref]
        return next((i for i in self.present.values() if i.id == ref), None)

    async def list_images(self) -> list[Image]:
        return list(self.present.values())

    async def remove_image(self, ref: str) -> None:
        self.removed.append(ref)
        for k in [k for k, v in self.present.items() if k == ref or v.id == ref]:
            del self.present[k]

    async def image_fs_info(self) -> FilesystemUsage:
        return self.fs


__all__ = ["FakeRuntime", "FakeImageService", "ImageNeverPullError"]
