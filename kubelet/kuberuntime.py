"""The executor of the planner's actions against the runtime (Kubernetes' ``kuberuntime_manager`` SyncPod).

Given a pod and its :class:`RuntimePod`, runs ``compute_pod_actions`` and does what it says: kill the
pod (preStop hooks, stop with the grace period, stop the sandbox), create the sandbox (volumes first),
kill containers, start the next init container or the app containers (image, config, create, start,
postStart). What went wrong per container is returned as waiting reasons for the status computer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from kubelet.containerconfig import (ANN_TERMINATION_HOST_PATH, ANN_TERMINATION_POLICY, LABEL_POD_UID,
                                     container_config, sandbox_config)
from kubelet.cri import ContainerState, ContainerStatus, CriError, NotFoundError, RuntimeService
from kubelet.envvars import ContainerConfigError, Sources
from kubelet.handlers import run_handler
from kubelet.images import ImageError, ImageManager, pull_policy
from kubelet.logs import tail_text
from kubelet.planner import Backoff, PodActions, RuntimePod, backoff_key, compute_pod_actions
from kubelet.poddirs import PodDirs, pod_dirs
from kubelet.volumes import TMPFS_ANNOTATION, container_mounts, setup_volumes

logger = logging.getLogger(__name__)
DEFAULT_GRACE = 30
MIN_GRACE = 2
START_CONCURRENCY = (os.cpu_count() or 2) + 1     # first pod starts at once (one more than cores: overlap the waits)


@dataclass
class SyncResult:
    actions: PodActions
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)   # container → (reason, message)
    events: list[tuple[str, str, str]] = field(default_factory=list)   # (type, reason, message)
    started: list[str] = field(default_factory=list)
    sandbox_ready_at: float = 0.0                                      # wall-clock, when created here
    started_at: float = 0.0                                            # wall-clock, last container started
    marks: dict[str, float] = field(default_factory=dict)              # step → wall-clock when it began/ended here


def grace_period(pod: Mapping[str, Any]) -> int:
    meta = pod.get("metadata") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return int(meta["deletionGracePeriodSeconds"])
    g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE if g is None else int(g)


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def _spec_container(pod: Mapping[str, Any], name: str) -> tuple[Mapping[str, Any] | None, bool]:
    spec = pod.get("spec") or {}
    for c in spec.get("initContainers") or []:
        if c.get("name") == name:
            return c, True
    for c in spec.get("containers") or []:
        if c.get("name") == name:
            return c, False
    return None, False


class RuntimeManager:
    """Makes the runtime match one pod at a time; the pod worker calls :meth:`sync_pod` serially per pod."""

    def __init__(self, runtime: RuntimeService, images: ImageManager, *, node_name: str, root_dir: Path,
                 log_dir: Path, backoff: Backoff | None = None, clock: Callable[[], float] = time.time,
                 start_concurrency: int = START_CONCURRENCY) -> None:
        self.runtime = runtime
        self.images = images
        self.node_name = node_name
        self.root_dir = root_dir
        self.log_dir = log_dir
        self.pod_dirs = pod_dirs(root_dir)        # recycled: see poddirs
        self.log_dirs = PodDirs(log_dir)
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.host_ip = "127.0.0.1"                                # for hostNetwork pods' hooks
        self._sandbox_ids: dict[str, set[str]] | None = None   # uid → its sandbox ids (None: not listed yet)
        # first starts of pods (sandbox, then containers) a few at a time, in arrival order: with a burst on a
        # few cores, all at once share the CPU and all finish late; one after another, most finish early
        self._starts = asyncio.Semaphore(start_concurrency)
        self.starting = 0                                    # pods in or waiting for their first start

    # ---------------------------------------------------------------- reading the runtime
    async def runtime_pods(self) -> dict[str, RuntimePod]:
        """Every pod the runtime holds for this node, by uid (sandboxes without our labels are left out)."""
        return self.group(await self.runtime.list_pod_sandboxes(), await self.runtime.list_containers())

    def group(self, all_sandboxes: list[Any], all_containers: list[ContainerStatus]) -> dict[str, RuntimePod]:
        """A listing (e.g. PLEG's last relist) grouped into this node's pods by uid."""
        sandboxes = [s for s in all_sandboxes if self.owns(s.labels)]
        containers = [c for c in all_containers if self.owns(c.labels)]
        by_uid: dict[str, tuple[list[Any], list[ContainerStatus]]] = {}
        for s in sandboxes:
            by_uid.setdefault(s.labels.get(LABEL_POD_UID) or s.metadata.uid, ([], []))[0].append(s)
        for c in containers:
            uid = c.labels.get(LABEL_POD_UID, "")
            if uid:
                by_uid.setdefault(uid, ([], []))[1].append(c)
        known = self._sandbox_ids if self._sandbox_ids is not None else {}
        for uid, (sbs, _) in by_uid.items():       # merge: a sandbox made during the listing must not be lost
            known.setdefault(uid, set()).update(s.id for s in sbs)
        self._sandbox_ids = known
        return {uid: RuntimePod.of(uid, sbs, cs) for uid, (sbs, cs) in by_uid.items()}

    def owns(self, labels: Mapping[str, str]) -> bool:
        return labels.get("kubelite.io/managed-by") == "kubelet" and labels.get("kubelite.io/node") == self.node_name

    async def runtime_pod(self, uid: str) -> RuntimePod:
        """One pod's sandboxes and containers. Sandboxes are looked up by id (this kubelet creates every
        sandbox of its pods; the first full listing finds those of an earlier run), containers in one listing."""
        if self._sandbox_ids is None:
            await self.runtime_pods()
        if uid not in (self._sandbox_ids or {}):
            # nothing of it in any listing (each records every uid it saw, PLEG's every second through
            # housekeeping) and no sandbox made for it: a new pod, whose first sync need not read the state
            # of every container on the node (a burst of 30 did that 30 times)
            return RuntimePod.of(uid, [], [])
        sandboxes = []
        for sid in list((self._sandbox_ids or {}).get(uid, ())):
            try:
                sandboxes.append(await self.runtime.pod_sandbox_status(sid))
            except NotFoundError:
                self._sandbox_ids[uid].discard(sid)            # type: ignore[index]
        ids = {s.id for s in sandboxes}
        if ids:  # only this pod's sandboxes' containers: the runtime filters before it reads their state
            listed = [c for sid in sorted(ids) for c in await self.runtime.list_containers(sid)]
        else:
            listed = await self.runtime.list_containers()
        containers = [c for c in listed if c.labels.get(LABEL_POD_UID) == uid and self.owns(c.labels)
                      and (c.pod_sandbox_id in ids or not ids)]
        return RuntimePod.of(uid, sandboxes, containers)

    def _remember(self, uid: str, sandbox_id: str) -> None:
        if self._sandbox_ids is None:
            self._sandbox_ids = {}
        self._sandbox_ids.setdefault(uid, set()).add(sandbox_id)

    # ---------------------------------------------------------------- the sync
    async def sync_pod(self, pod: Mapping[str, Any], rp: RuntimePod, sources: Sources,
                       pull_secrets: list[Mapping[str, Any]], liveness_failed: frozenset[str] = frozenset(),
                       startup_failed: frozenset[str] = frozenset(), runtime_handler: str = "") -> SyncResult:
        now = self.clock()
        actions = compute_pod_actions(pod, rp, backoff=self.backoff, now=now,
                                      liveness_failed=liveness_failed, startup_failed=startup_failed)
        result = SyncResult(actions)
        for name, left in actions.backoff.items():
            c, _ = _spec_container(pod, name)
            delay = self.backoff.get(backoff_key(pod, c or {}), now)
            meta = pod.get("metadata") or {}
            result.errors[name] = ("CrashLoopBackOff",
                                   f"back-off {delay:g}s restarting failed container={name} "
                                   f"pod={meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})")
            result.events.append(("Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                                                        f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"))
        if actions.kill_pod:
            for st in rp.running():
                result.events.append(("Normal", "Killing", f"Stopping container {st.metadata.name}"))
            await self.kill_pod(pod, rp, grace_period(pod), result)
            if not actions.create_sandbox:
                return result
        else:
            for cid, why in actions.containers_to_kill.items():
                c, _ = _spec_container(pod, why.name)
                if why.message:
                    result.events.append(("Normal", "Killing", why.message))
                await self.kill_container(pod, cid, c, grace_period(pod))

        if not actions.create_sandbox or not await self._images_present(pod, actions):
            return await self._start(pod, rp, actions, sources, pull_secrets, runtime_handler, result)
        self.starting += 1
        try:
            async with self._starts:      # (an image pull, seconds long, must not hold up the others)
                return await self._start(pod, rp, actions, sources, pull_secrets, runtime_handler, result)
        finally:
            self.starting -= 1

    async def _images_present(self, pod: Mapping[str, Any], actions: PodActions) -> bool:
        """Every image the containers about to start need is on the node and needs no pull."""
        for name in [actions.next_init_container] if actions.next_init_container else actions.containers_to_start:
            c, _ = _spec_container(pod, name or "")
            if c is None or pull_policy(c) == "Always" or not c.get("image"):
                return False
            try:
                if await self.images.images.image_status(str(c["image"])) is None:
                    return False
            except CriError:
                return False
        return True

    async def _start(self, pod: Mapping[str, Any], rp: RuntimePod, actions: PodActions, sources: Sources,
                     pull_secrets: list[Mapping[str, Any]], runtime_handler: str, result: SyncResult) -> SyncResult:
        sandbox_id = actions.sandbox_id
        try:
            volumes, tmpfs = await asyncio.to_thread(setup_volumes, self.root_dir, pod, sources)
        except ContainerConfigError as exc:
            for name in list(actions.containers_to_start) + [actions.next_init_container or ""]:
                if name:
                    result.errors[name] = ("CreateContainerConfigError", str(exc))
            return result
        except OSError as exc:                  # e.g. a hostPath the kubelet may not create
            result.events.append(("Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}"))
            for name in list(actions.containers_to_start) + [actions.next_init_container or ""]:
                if name:
                    result.errors[name] = ("ContainerCreating", "")
            return result
        if actions.create_sandbox:
            annotations = {TMPFS_ANNOTATION: "[" + ",".join(tmpfs) + "]"} if tmpfs else {}
            cfg = sandbox_config(pod, self.node_name, str(self.log_dir), actions.attempt, annotations)
            await asyncio.to_thread(self.log_dirs.make, Path(cfg.log_directory).name)
            result.marks.setdefault("sandboxCall", time.time())
            try:
                sandbox_id = await self.runtime.run_pod_sandbox(cfg, runtime_handler)
            except CriError as exc:
                result.events.append(("Warning", "FailedCreatePodSandBox",
                                      f"Failed to create pod sandbox: {exc}"))
                for name in actions.containers_to_start or (actions.next_init_container,):
                    if name:
                        result.errors[name] = ("ContainerCreating", "")
                return result
            self._remember(rp.uid, sandbox_id)
            result.sandbox_ready_at = time.time()
            rp = RuntimePod.of(rp.uid, [await self.runtime.pod_sandbox_status(sandbox_id), *rp.sandboxes],
                               list(rp.containers))
        sb = rp.sandbox
        if sb is None:
            return result
        to_start = [actions.next_init_container] if actions.next_init_container else list(actions.containers_to_start)
        for name in to_start:
            c, init = _spec_container(pod, name)
            if c is None:
                continue
            await self.start_container(pod, c, init, rp, sb, sources, pull_secrets, volumes, result)
        return result

    async def start_container(self, pod: Mapping[str, Any], c: Mapping[str, Any], init: bool, rp: RuntimePod,
                              sb: Any, sources: Sources, pull_secrets: list[Mapping[str, Any]],
                              volumes: Mapping[str, Path], result: SyncResult) -> None:
        name = c.get("name", "")
        now = self.clock()
        previous = rp.latest(name)
        attempt = previous.metadata.attempt + 1 if previous is not None else 0
        try:
            image_id, image = await self.images.ensure_image(pod, c, pull_secrets, now, result.events)
        except ImageError as exc:
            result.errors[name] = (exc.reason, exc.message)
            result.events.append(("Warning", "Failed", exc.message))
            return
        ip = sb.ip or (sources.host_ip if (pod.get("spec") or {}).get("hostNetwork") else "")
        src = Sources(sources.configmaps, sources.secrets, pod_ip=ip,
                      host_ip=sources.host_ip, node_allocatable=sources.node_allocatable)
        uid = (pod.get("metadata") or {}).get("uid", "")
        term_name = f"{attempt}-{time.time_ns() % 10**9}"
        term_file = self.pod_dirs.path(uid) / "containers" / name / term_name
        try:
            mounts = container_mounts(c, volumes, pod)
            cfg = container_config(pod, c, image_ref=image_id, attempt=attempt, node_name=self.node_name,
                                   sources=src, mounts=mounts, init=init, termination_host_path=str(term_file),
                                   image_uid=getattr(image, "uid", None), image_user=getattr(image, "username", ""))
        except ContainerConfigError as exc:
            result.errors[name] = ("CreateContainerConfigError", str(exc))
            result.events.append(("Warning", "Failed", f"Error: {exc}"))
            return
        sandbox_cfg = sandbox_config(pod, self.node_name, str(self.log_dir), sb.metadata.attempt)
        await asyncio.to_thread(self._container_files, uid, name, term_name, Path(sandbox_cfg.log_directory).name,
                                cfg.log_path)
        if previous is not None:
            self.backoff.next(backoff_key(pod, c), now)
        result.marks.setdefault("createCall", time.time())
        try:
            cid = await self.runtime.create_container(sb.id, cfg, sandbox_cfg)
        except CriError as exc:
            logger.warning("%s: creating container %s failed: %s", pod_key(pod), name, exc)
            result.errors[name] = ("CreateContainerError", str(exc))
            result.events.append(("Warning", "Failed", f"Error: {exc}"))
            return
        result.events.append(("Normal", "Created", f"Created container: {name}"))
        result.marks.setdefault("created", time.time())
        try:
            await self.runtime.start_container(cid)
        except CriError as exc:
            result.errors[name] = ("RunContainerError", str(exc))
            result.events.append(("Warning", "Failed", f"Error: {exc}"))
            return
        result.started.append(name)
        result.started_at = time.time()
        result.events.append(("Normal", "Started", f"Started container {name}"))
        post = ((c.get("lifecycle") or {}).get("postStart"))
        if post:
            res = await run_handler(post, runtime=self.runtime, container_id=cid, container=c,
                                    pod_ip=ip, timeout=float(grace_period(pod)))
            if not res.ok:
                msg = f"PostStartHook failed: {res.message}"
                result.events.append(("Warning", "FailedPostStartHook", msg))
                await self.runtime.stop_container(cid, 0)
                result.errors[name] = ("PostStartHookError", msg)

    async def kill_container(self, pod: Mapping[str, Any], cid: str, c: Mapping[str, Any] | None,
                             grace: int) -> None:
        """preStop (within the grace period), then SIGTERM, the rest of the grace, SIGKILL."""
        deadline = time.monotonic() + max(grace, 0)
        pre = ((c or {}).get("lifecycle") or {}).get("preStop")
        if pre and grace > 0:
            try:
                st = await self.runtime.container_status(cid)
                sb = await self.runtime.pod_sandbox_status(st.pod_sandbox_id)
                await asyncio.wait_for(run_handler(pre, runtime=self.runtime, container_id=cid, container=c or {},
                                                   pod_ip=sb.ip or self.host_ip, timeout=float(grace)), grace)
            except (asyncio.TimeoutError, CriError) as exc:
                logger.info("%s: preStop of %s: %s", pod_key(pod), cid, exc)
        left = max(deadline - time.monotonic(), MIN_GRACE if grace > 0 else 0)
        try:
            await self.runtime.stop_container(cid, left)
        except CriError as exc:
            logger.warning("%s: stop of %s failed: %s", pod_key(pod), cid, exc)

    async def kill_pod(self, pod: Mapping[str, Any], rp: RuntimePod, grace: int, result: SyncResult | None = None
                       ) -> None:
        running = rp.running()
        if running:
            async with asyncio.TaskGroup() as tg:
                for st in running:
                    c, _ = _spec_container(pod, st.metadata.name)
                    tg.create_task(self.kill_container(pod, st.id, c, grace))
        for sb in rp.sandboxes:
            if sb.state.value == "SANDBOX_READY":
                await self.runtime.stop_pod_sandbox(sb.id)

    def _container_files(self, uid: str, name: str, term_name: str, log_dir: str, log_path: str) -> None:
        """The instance's termination-message file and its log file (empty, from spares: see poddirs)."""
        self.pod_dirs.file(uid, name, term_name, 0o666)
        if log_path:
            container, _, filename = log_path.rpartition("/")
            self.log_dirs.file(log_dir, container, filename)

    def _remove_dirs(self, uid: str) -> None:
        """A removed pod's directory and its logs (as Kubernetes' GC once the pod is gone)."""
        self.pod_dirs.remove(uid)
        for name in self.log_dirs.named_for(f"_{uid}"):
            self.log_dirs.remove(name)

    async def remove_pod(self, rp: RuntimePod) -> None:
        """Remove everything of a pod that is gone from the API (containers, sandboxes, its directory)."""
        for c in rp.containers:
            await self.runtime.remove_container(c.id)
        for sb in rp.sandboxes:
            await self.runtime.stop_pod_sandbox(sb.id)
            await self.runtime.remove_pod_sandbox(sb.id)
        if self._sandbox_ids is not None:
            self._sandbox_ids.pop(rp.uid, None)
        await asyncio.to_thread(self._remove_dirs, rp.uid)
        self.backoff.forget(rp.uid + "/")
        self.images.forget(rp.uid)


def termination_message(c: ContainerStatus) -> str:
    """The message an exited container left (its file, or its log tail with FallbackToLogsOnError)."""
    if c.state != ContainerState.EXITED:
        return ""
    msg = ""
    host = c.annotations.get(ANN_TERMINATION_HOST_PATH, "")
    if host:
        try:
            with open(host, "rb") as fh:
                msg = fh.read(4096).decode(errors="replace")
        except OSError:
            msg = ""
    if not msg and c.exit_code != 0 and c.annotations.get(ANN_TERMINATION_POLICY) == "FallbackToLogsOnError" \
            and c.log_path:
        msg = tail_text(Path(c.log_path))
    return msg
