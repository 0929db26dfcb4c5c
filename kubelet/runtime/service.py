"""``Runtime``: the node's RuntimeService (kubelet.cri) over sandboxes, snapshots, OCI bundles and the fork server.

State lives under ``root`` (default ``/run/kubelite/runtime``): ``sandboxes/<id>/``; what lives only as long
as the host is up, under ``scratch`` (``root`` itself on a tmpfs, else a directory of its own on
``/dev/shm``: see snapshots.scratch_root): ``containers/<id>/`` (``meta.json`` and the OCI ``bundle/``) and
``oci/<id>/`` (what each shim records); the containers' upper dirs in ``root/snapshots/`` (ephemeral
storage on the node's disk, not memory). A new
``Runtime`` on the same root re-adopts everything: listings are read from disk, and a container that
exited while no runtime ran still shows the exit code and reason its shim wrote. Use as
``async with Runtime(...) as rt:`` (starts the fork server and the events socket).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import shutil
import signal
import socket
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from kubelet import cri
from kubelite.api.errors import KubeliteError
from kubelet.runtime import exec as exec_mod
from kubelet.runtime import oci, sandbox
from kubelet.runtime.images_adapter import resolve_image
from kubelet.runtime.ociruntime import cgroupfs, ops, state
from kubelet.runtime.cgroups import CgroupError
from kubelet.runtime.linux import MNT_DETACH
from kubelet.runtime.network import NodeNetwork
from kubelet.runtime.ociruntime.client import ForkServerClient, ForkServerError
from kubelet.runtime.ociruntime.shim import HANDLER_ANNOTATION
from kubelet.runtime.records import Records
from kubelet.runtime.snapshots import PURGE_AFTER, Snapshotter, release_scratch, scratch_root

logger = logging.getLogger(__name__)

HANDLERS = ("kubelite", "runc", "crun")
ENSURE_EVERY = 1.0   # seconds between checks of the node's bridge, gateway address and routes
OWNER_LABEL = "io.kubelite.owner"


class Runtime:
    """kubelite's RuntimeService. ``image_store``: an object with ``get(ref)`` (kubelet.runtime.images)."""

    def __init__(self, root: str = "/run/kubelite/runtime", *, node_name: str = "node",
                 cgroup_root: str | None = None, image_store: Any = None,
                 network: NodeNetwork | None = None) -> None:
        self.root = os.path.abspath(root)
        self.cgroup_root = cgroup_root if cgroup_root is not None else f"kubelite/{node_name}"
        self.image_store = image_store
        self.network = network
        # bundles and the OCI runtime's state live only as long as the host is up: on a tmpfs
        # (snapshots.scratch_root), where they cost no disk journal; what containers write to their rootfs
        # stays on the disk (volatile overlay uppers), not in memory charged to their limits
        self.scratch = scratch_root(self.root)
        self.containers_dir = str(self.scratch / "containers")
        self.oci_root = str(self.scratch / "oci")
        self.snapshots = Snapshotter(Path(self.root) / "snapshots")
        # one fork server per runtime process: a `kubelite runtime` beside a running kubelet gets its own
        self.fs = ForkServerClient(os.path.join(self.root, f"forkserver-{os.getpid()}.sock"))
        self.events_path = os.path.join(self.root, "events.sock")
        self._subscribers: set[asyncio.Queue[cri.ContainerEvent]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        # sandboxes of different pods are made concurrently; only what reads-then-claims shared state
        # serializes: the user-namespace uid ranges (allocated from what is on disk) and the node network's
        # idempotent bridge/route check (IPAM is file-locked on its own)
        self._userns_lock = asyncio.Lock()
        self._net_lock = asyncio.Lock()
        self._net_ensured = -ENSURE_EVERY
        self.records = Records(self.containers_dir, self.oci_root)
        # a few sandboxes at a time: in a burst, all at once would finish all late (two cores shared by
        # thirty), a few at a time overlap the kernel's waits (veth, RCU) and finish the first pods first
        self._sandbox_slots = asyncio.Semaphore(max(2, os.cpu_count() or 2))
        # listings read many small files: their own threads, never queued behind a slow network setup
        self._reads = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="kubelite-runtime-read")

    async def __aenter__(self) -> "Runtime":
        os.makedirs(os.path.join(self.root, "sandboxes"), exist_ok=True)
        os.makedirs(self.containers_dir, exist_ok=True)
        os.makedirs(self.oci_root, exist_ok=True)
        # the fork server starts on first use, in the event loop's thread: it dies with the thread that
        # forked it (PDEATHSIG), so never from a worker thread
        if _listening(self.events_path):
            return self  # another runtime process (the kubelet) hears the shims; relists still see all
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.events_path)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Events(self), local_addr=self.events_path, family=socket.AF_UNIX)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.events_path)
        self.fs.stop()
        self._reads.shutdown(wait=False)
        await asyncio.to_thread(self.snapshots.close)
        await asyncio.to_thread(release_scratch, self.scratch, self.root)
        await asyncio.to_thread(sandbox.free_dirs(self.root).purge)

    # ------------------------------------------------------------------------------------- events
    def _publish(self, ev: cri.ContainerEvent) -> None:
        for q in self._subscribers:
            q.put_nowait(ev)

    async def events(self) -> AsyncIterator[cri.ContainerEvent]:  # type: ignore[override]
        q: asyncio.Queue[cri.ContainerEvent] = asyncio.Queue()
        self._subscribers.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.discard(q)

    async def version(self) -> dict[str, str]:
        return {"runtime_name": "kubelite", "runtime_version": "0.1.0", "runtime_api_version": "v1"}

    # ---------------------------------------------------------------------------------- sandboxes
    async def run_pod_sandbox(self, config: cri.PodSandboxConfig, runtime_handler: str = "") -> str:
        handler = runtime_handler or "kubelite"
        if handler not in HANDLERS:
            raise cri.CriError(f"unknown runtime handler {handler!r} (have: {', '.join(HANDLERS)})")
        sid = uuid.uuid4().hex
        try:
            async with contextlib.AsyncExitStack() as held:
                await held.enter_async_context(self._sandbox_slots)
                if not config.host_users:  # uid ranges are allocated from what is on disk
                    await held.enter_async_context(self._userns_lock)
                if self.network is not None and not config.host_network:
                    # bridge kubelite0, gateway, routes: idempotent, and the bridge is shared by every node on
                    # the host (a `kubelite down` elsewhere may have removed it, another node made it again
                    # without our gateway). Checked once per ENSURE_EVERY for a burst; a bridge gone meanwhile
                    # is made again by the pod's setup (ENODEV)
                    async with self._net_lock:
                        if time.monotonic() - self._net_ensured >= ENSURE_EVERY:
                            await asyncio.to_thread(self.network.ensure)
                            self._net_ensured = time.monotonic()
                await sandbox.create(self.fs, self.root, sid, config, handler, self.cgroup_root, {}, self.network)
        except (ForkServerError, OSError, ValueError, KubeliteError) as e:
            raise sandbox.SandboxError(f"{config.metadata.namespace}/{config.metadata.name}: {e}") from e
        logger.info("sandbox %s for %s/%s ready", sid[:12], config.metadata.namespace, config.metadata.name)
        return sid

    def _sandbox(self, sid: str) -> dict[str, Any]:
        meta = sandbox.load(self.root, sid)
        if meta is None:
            raise cri.NotFoundError(f"pod sandbox {sid} not found")
        return meta

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        meta = sandbox.load(self.root, sandbox_id)
        if meta is None:
            return
        for c in await self.list_containers(sandbox_id):
            if c.state in (cri.ContainerState.RUNNING, cri.ContainerState.CREATED):
                await self.stop_container(c.id, 0)
        await sandbox.stop(self.fs, meta, self.network)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        meta = sandbox.load(self.root, sandbox_id)
        if meta is None:
            return
        for c in await self.list_containers(sandbox_id):
            await self.remove_container(c.id)
        await sandbox.remove(self.fs, meta, self.network)

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        return sandbox.status(self._sandbox(sandbox_id))

    async def list_pod_sandboxes(self) -> list[cri.PodSandboxStatus]:
        return await asyncio.get_running_loop().run_in_executor(self._reads, self._list_pod_sandboxes)

    def _list_pod_sandboxes(self) -> list[cri.PodSandboxStatus]:
        out = []
        for sid in sandbox.list_ids(self.root):
            meta = sandbox.load(self.root, sid)
            if meta is not None:
                out.append(sandbox.status(meta))
        return out

    # --------------------------------------------------------------------------------- containers
    def _view(self, meta: dict[str, Any]) -> oci.SandboxView:
        cfg = meta["config"]
        ns: dict[str, str] = dict(meta["ns"])
        if cfg["host_network"]:
            ns["network"] = ns["uts"] = "host"
        if cfg["host_ipc"]:
            ns["ipc"] = "host"
        if cfg["host_pid"]:
            ns["pid"] = "host"
        d = meta["dir"]
        etc = {"/etc/hostname": f"{d}/hostname", "/etc/resolv.conf": f"{d}/resolv.conf"}
        etc["/etc/hosts"] = f"{d}/hosts"
        base = meta.get("userns_base")
        maps = ((0, base, sandbox.USERNS_SIZE),) if base else ()
        return oci.SandboxView(namespaces=ns, hostname=cfg["hostname"], shm=f"{d}/shm", etc_files=etc,
                               uid_map=maps, gid_map=maps)

    async def create_container(self, sandbox_id: str, config: cri.ContainerConfig,
                               sandbox_config: cri.PodSandboxConfig) -> str:
        meta = self._sandbox(sandbox_id)
        if meta.get("state") != cri.PodSandboxState.READY.value:
            raise cri.CreateContainerError(f"pod sandbox {sandbox_id} is not ready")
        image = resolve_image(self.image_store, config.image)
        cid = uuid.uuid4().hex
        cdir = os.path.join(self.containers_dir, cid)
        bundle = os.path.join(cdir, "bundle")
        log_path = os.path.join(sandbox_config.log_directory, config.log_path) if config.log_path else ""
        cg = f"{meta['cgroup']}/{cid}"
        handler = meta.get("handler", "kubelite")

        def write_bundle() -> tuple[dict[str, Any], list[Any]]:
            """The files (snapshot dirs, config.json, meta.json), in a worker thread; removed again on failure."""
            try:
                os.makedirs(os.path.join(bundle, "rootfs"))
                mounts = self.snapshots.prepare(cid, image.layer_paths)
                if meta.get("userns_base"):  # the container's root owns its writable layer
                    os.chown(self.snapshots.upper(cid), meta["userns_base"], meta["userns_base"])
                view = self._view(meta)
                if handler != "kubelite" and view.uid_map:
                    raise oci.SpecError(f"hostUsers: false is not supported with runtime handler {handler}")
                spec = oci.generate(cid, config, image.config, [str(p) for p in image.layer_paths], view, cg,
                                    [m.to_oci("/") for m in mounts] if handler == "kubelite" else [])
                if handler != "kubelite":
                    spec["annotations"][HANDLER_ANNOTATION] = handler
                state.write_json(os.path.join(bundle, "config.json"), spec)
                if log_path:
                    os.makedirs(os.path.dirname(log_path), exist_ok=True)
                record = {"id": cid, "sandbox": sandbox_id, "config": asdict(config), "created_at": time.time_ns(),
                          "log_path": log_path, "image_id": image.id, "image_ref": image.ref, "handler": handler}
                state.write_json(os.path.join(cdir, "meta.json"), record)
                return spec, mounts
            except BaseException:
                self.snapshots.remove(cid)
                shutil.rmtree(cdir, True)
                raise

        req = {"op": "create", "root": self.oci_root, "id": cid, "bundle": bundle, "log_path": log_path,
               "events": self.events_path, "cgroup": cgroupfs.files(cg)}

        def write_and_create() -> tuple[socket.socket, BaseException | None]:
            """Our own handler, in one worker thread: the files, the create request (a spare shim takes
            it), then the cgroup while the init forks and mounts (it joins once the cgroup is there)."""
            spec, _mounts = write_bundle()
            try:
                sock = self.fs.send(req)
            except BaseException:
                self.snapshots.remove(cid)
                shutil.rmtree(cdir, True)
                raise
            try:
                cgroupfs.create(cg, spec["linux"]["resources"])
            except BaseException as e:  # the loop deletes the container once its create has answered
                return sock, e
            return sock, None

        if handler == "kubelite":
            try:
                self.fs.ensure()
                sock, made = await asyncio.to_thread(write_and_create)
                try:
                    try:
                        await self.fs.answer(sock, "create")
                    except ConnectionResetError:
                        # our request waited in the backlog of a spare that was retiring and closed without
                        # reading it (a seqpacket peer resets only with unread data): nothing was done, so
                        # it goes once more, to the current spare
                        sock = await asyncio.to_thread(self.fs.send, req)
                        await self.fs.answer(sock, "create")
                except BaseException:
                    await asyncio.to_thread(self._undo_create, cid, cg)
                    raise
                if made is not None:
                    await asyncio.to_thread(ops.delete, self.oci_root, cid, True)
                    await asyncio.to_thread(self._undo_create, cid, cg)
                    raise made
            except (oci.SpecError, ForkServerError, OSError, ValueError, CgroupError) as e:
                raise cri.CreateContainerError(f"{config.metadata.name}: {e}") from e
            self._publish(cri.ContainerEvent(cid, sandbox_id, "created", time.time_ns()))
            return cid
        async with contextlib.AsyncExitStack() as undo:
            try:
                spec, mounts = await asyncio.to_thread(write_bundle)
                undo.callback(shutil.rmtree, cdir, True)
                undo.callback(self.snapshots.remove, cid)
                if handler != "kubelite":  # runc and crun want the rootfs mounted: in the node's namespace
                    m = mounts[0]
                    await self.fs.call({"op": "mount", "source": m.source, "target": os.path.join(bundle, "rootfs"),
                                        "fstype": m.type, "data": ",".join(m.options)})
                    undo.push_async_callback(self._umount_rootfs, cid)
                undo.push_async_callback(asyncio.to_thread, cgroupfs.destroy, cg)
                # the cgroup is made while the fork server forks, unshares and mounts (the shim waits
                # for it before the attach): two cores, two halves of the work
                made, created = await asyncio.gather(
                    asyncio.to_thread(cgroupfs.create, cg, spec["linux"]["resources"]),
                    self.fs.call({"op": "create", "root": self.oci_root, "id": cid, "bundle": bundle,
                                  "log_path": log_path, "events": self.events_path,
                                  "cgroup": cgroupfs.files(cg)}), return_exceptions=True)
                if isinstance(created, BaseException):
                    raise created
                if isinstance(made, BaseException):
                    await asyncio.to_thread(ops.delete, self.oci_root, cid, True)
                    raise made
                undo.pop_all()
            except (oci.SpecError, ForkServerError, OSError, ValueError, CgroupError) as e:
                raise cri.CreateContainerError(f"{config.metadata.name}: {e}") from e
        self._publish(cri.ContainerEvent(cid, sandbox_id, "created", time.time_ns()))
        return cid

    def _undo_create(self, cid: str, cg: str) -> None:
        """What a failed create of ours leaves: the cgroup, the snapshot, the bundle (blocking)."""
        try:
            cgroupfs.destroy(cg)
        finally:
            self.snapshots.remove(cid)
            shutil.rmtree(os.path.join(self.containers_dir, cid), True)

    async def start_container(self, container_id: str) -> None:
        meta = self.records.get(container_id)
        try:
            await asyncio.to_thread(ops.start, self.oci_root, container_id)
        except ops.OciError as e:
            raise cri.CreateContainerError(f"{meta['config']['metadata']['name']}: {e}") from e
        self._publish(cri.ContainerEvent(container_id, meta["sandbox"], "started", time.time_ns()))

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self.records.get(container_id)
        st = state.status(self.oci_root, container_id)
        if st is None or st["status"] == "stopped":
            return
        sig = signal.SIGTERM if timeout > 0 and st["status"] == "running" else signal.SIGKILL
        with contextlib.suppress(ops.OciError):
            await asyncio.to_thread(ops.kill, self.oci_root, container_id, sig)
        if sig == signal.SIGTERM:
            try:
                await asyncio.to_thread(ops.wait, self.oci_root, container_id, timeout)
                return
            except (TimeoutError, OSError):
                pass
            with contextlib.suppress(ops.OciError):
                await asyncio.to_thread(ops.kill, self.oci_root, container_id, signal.SIGKILL)
        await asyncio.to_thread(ops.wait, self.oci_root, container_id, 10)

    async def _umount_rootfs(self, cid: str) -> None:
        await self.fs.call({"op": "umount", "target": os.path.join(self.containers_dir, cid, "bundle", "rootfs"),
                            "flags": MNT_DETACH})

    async def remove_container(self, container_id: str) -> None:
        m = self.records.read(container_id)
        self.records.forget(container_id)
        cdir = os.path.join(self.containers_dir, container_id)
        if m is not None and m.get("handler", "kubelite") != "kubelite":
            await asyncio.to_thread(ops.delete, self.oci_root, container_id, True)
            await self._umount_rootfs(container_id)
            await asyncio.to_thread(self._remove_files, container_id, cdir)
        else:  # one worker-thread hop for all of it
            await asyncio.to_thread(self._delete_and_remove_files, container_id, cdir)
        if m is not None:
            self._publish(cri.ContainerEvent(container_id, m["sandbox"], "deleted", time.time_ns()))

    def _remove_files(self, cid: str, cdir: str) -> None:
        self.snapshots.remove(cid)
        shutil.rmtree(cdir, True)
        self.snapshots.purge_trash(PURGE_AFTER)      # (those removed a while ago: to the next containers)

    def _delete_and_remove_files(self, cid: str, cdir: str) -> None:
        ops.delete(self.oci_root, cid, True)
        self._remove_files(cid, cdir)

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        return self.records.status(self.records.get(container_id))

    async def list_containers(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        return await asyncio.get_running_loop().run_in_executor(self._reads, self.records.list, sandbox_id)

    def container_config(self, container_id: str) -> cri.ContainerConfig:
        return self.records.config(container_id)

    # ----------------------------------------------------------------------------------- exec/stats
    def _process(self, cid: str, cmd: Sequence[str], tty: bool) -> dict[str, Any]:
        spec = state.read_json(os.path.join(self.containers_dir, cid, "bundle", "config.json"))
        if spec is None:
            raise cri.NotFoundError(f"container {cid} not found")
        proc = dict(spec["process"])
        proc["args"], proc["terminal"] = list(cmd), tty
        return proc

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: float) -> cri.ExecResult:
        p = await self.exec(container_id, cmd, tty=False, stdin=False)
        return await exec_mod.collect(p, timeout)

    async def exec(self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool) -> cri.ExecProcess:
        proc = self._process(container_id, cmd, tty)
        try:
            return await exec_mod.start(self.fs, self.oci_root, container_id, proc, tty=tty, stdin=stdin)
        except ForkServerError as e:
            raise cri.CriError(f"exec in {container_id}: {e}") from e

    async def container_stats(self, container_id: str) -> cri.ContainerStats:
        self.records.get(container_id)
        st = state.status(self.oci_root, container_id)
        cg = st["_state"].get("cgroup", "") if st and "_state" in st else ""
        figures = await asyncio.to_thread(cgroupfs.stats, cg) if cg else {}
        usage = await asyncio.to_thread(self.snapshots.usage, container_id)
        return cri.ContainerStats(container_id=container_id, timestamp=time.time_ns(),
                                  writable_layer_bytes=usage, **figures)

    async def list_container_stats(self) -> list[cri.ContainerStats]:
        return [await self.container_stats(c.id) for c in await self.list_containers()
                if c.state == cri.ContainerState.RUNNING]


def _listening(path: str) -> bool:
    """Someone has ``path`` bound and open (a stale socket file refuses)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class _Events(asyncio.DatagramProtocol):
    """Exit notes from shims (one JSON datagram each) → ContainerEvents."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def datagram_received(self, data: bytes, addr: Any) -> None:
        import json
        try:
            msg = json.loads(data)
            m = self.rt.records.read(msg["id"])
        except (ValueError, KeyError):
            return
        self.rt._publish(cri.ContainerEvent(msg["id"], m["sandbox"] if m else "", msg["kind"], msg["at"]))
