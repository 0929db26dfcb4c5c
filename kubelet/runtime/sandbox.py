"""Pod sandboxes: the pause process holding the pod's namespaces, its files, /dev/shm, network and cgroup.

``create`` makes ``<root>/sandboxes/<id>/`` with ``ns/{net,ipc,uts[,pid][,user]}`` (bind mounts of the
pause process' namespaces), ``hosts``, ``resolv.conf``, ``hostname`` and ``shm`` (a tmpfs named
``kubelite-shm``), asks node networking for the pod's veth and IP, and records everything in
``meta.json``. ``stop`` kills the pause process and releases the network; ``remove`` also unmounts and
hands the directory to ``sandboxes.free/`` for the next sandbox (``dirpool``). Each step is undone if a
later one fails: a failed create leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict
from typing import Any

from kubelet import cri
from kubelet.runtime import network, oci
from kubelet.runtime.dirpool import DirPool
from kubelet.runtime.linux import MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID
from kubelet.runtime.ociruntime import cgroupfs, state
from kubelet.runtime.ociruntime.client import ForkServerClient

logger = logging.getLogger(__name__)

USERNS_SIZE = 65536
USERNS_FIRST = 16  # ranges start at 16 * 65536 = 1048576 on the host, clear of ordinary users


class SandboxError(cri.CriError):
    """A sandbox could not be created; nothing of it is left."""


def config_to_json(cfg: cri.PodSandboxConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["hosts_entries"] = [list(x) for x in cfg.hosts_entries]
    return d


def config_from_json(d: dict[str, Any]) -> cri.PodSandboxConfig:
    d = dict(d)
    d["metadata"] = cri.PodSandboxMetadata(**d["metadata"])
    d["dns"] = cri.DNSConfig(**{k: tuple(v) for k, v in d["dns"].items()}) if d.get("dns") else None
    d["hosts_entries"] = tuple(tuple(x) for x in d.get("hosts_entries", ()))
    return cri.PodSandboxConfig(**d)


def hosts_content(cfg: cri.PodSandboxConfig, ip: str | None) -> str:
    if cfg.host_network:
        return network.host_network_hosts()
    aliases = [(addr, names.split()) for addr, names in cfg.hosts_entries]
    return network.hosts_file([ip] if ip else [], cfg.hostname, host_aliases=aliases)


def resolv_content(cfg: cri.PodSandboxConfig) -> str:
    dns = cfg.dns
    if dns is None or not (dns.servers or dns.searches or dns.options):
        return network.resolv_conf(None)  # ClusterFirst without cluster DNS: the host's
    return network.resolv_conf(network.DnsConfig(dns.servers, dns.searches, dns.options))


def _setup_pod(net: network.NodeNetwork, sid: str, netns: str) -> network.PodNetwork:
    """``setup_pod``, re-making the shared bridge when another node's ``kubelite down`` removed it meanwhile."""
    for attempt in range(3):
        try:
            return net.setup_pod(sid, netns)
        except network.NetlinkError as e:
            if e.errno != errno.ENODEV or attempt == 2:
                raise
            net.ensure()
    raise AssertionError("unreachable")


def allocate_userns(root: str) -> int:
    """The first host uid range (65536 ids) no other sandbox under ``root`` uses."""
    used = set()
    base = os.path.join(root, "sandboxes")
    for sid in state.list_ids(base):
        meta = state.read_json(os.path.join(base, sid, "meta.json"))
        if meta and meta.get("userns_base"):
            used.add(meta["userns_base"])
    slot = USERNS_FIRST
    while slot * USERNS_SIZE in used:
        slot += 1
    return slot * USERNS_SIZE


async def create(fs: ForkServerClient, root: str, sid: str, cfg: cri.PodSandboxConfig, handler: str,
                 cgroup_root: str, labels: dict[str, str], net: network.NodeNetwork | None) -> dict[str, Any]:
    """Make sandbox ``sid``; returns its meta record. Rolls everything back on failure."""
    d = os.path.join(root, "sandboxes", sid)
    meta: dict[str, Any] = {"id": sid, "config": config_to_json(cfg), "created_at": time.time_ns(),
                            "handler": handler, "ip": None, "pid": None, "ns": {}, "dir": d,
                            "cgroup": f"/{cgroup_root.strip('/')}/{cfg.cgroup_parent.strip('/')}",
                            "labels": labels}
    async with contextlib.AsyncExitStack() as undo:
        kinds = []
        if not cfg.host_network:
            kinds.append("network")
        if not cfg.host_ipc:
            kinds.append("ipc")
        if not cfg.host_network:
            kinds.append("uts")
        if cfg.share_process_namespace and not cfg.host_pid:
            kinds.append("pid")
        maps = None
        if not cfg.host_users:
            meta["userns_base"] = base = allocate_userns(root)
            maps = {"uid_map": f"0 {base} {USERNS_SIZE}\n", "gid_map": f"0 {base} {USERNS_SIZE}\n"}
        pins = {k: os.path.join(d, "ns", {"network": "net"}.get(k, k)) for k in kinds + (["user"] if maps else [])}
        # in one worker thread (file creation can take a millisecond each on a busy filesystem: never on the
        # event loop): the directory, its files and the namespace pins' mount points, and the pod cgroup;
        # meanwhile the fork server forks the pause process
        pod_res = oci.linux_resources(cfg.resources) if cfg.resources else {}
        undo.push_async_callback(asyncio.to_thread, shutil.rmtree, d, True)
        steps: list[Any] = [asyncio.to_thread(_prepare, d, cfg, list(pins.values()), meta["cgroup"], pod_res)]
        if kinds or maps:
            steps.append(fs.call({"op": "sandbox", "dir": d, "hostname": cfg.hostname, "namespaces": kinds,
                                  "maps": maps}))
        results = await asyncio.gather(*steps, return_exceptions=True)
        if not isinstance(results[0], BaseException):
            meta["own_cgroup"] = results[0]
            if meta["own_cgroup"]:
                undo.push_async_callback(asyncio.to_thread, cgroupfs.destroy, meta["cgroup"])
        if len(results) > 1 and not isinstance(results[1], BaseException):
            meta["pid"] = results[1]["pid"]
            undo.push_async_callback(_release, fs, meta)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        if meta["pid"]:
            meta["starttime"] = state.proc_starttime(meta["pid"])
            meta["ns"] = pins
        # /dev/shm and the namespace pins in one fork-server round trip, while the pod's veth is made
        # (through /proc/<pid>/ns/net: the pin is not needed for that)
        shm = os.path.join(d, "shm")
        undo.push_async_callback(fs.call, {"op": "umount", "target": shm, "flags": MNT_DETACH})
        steps = [fs.call({"op": "mounts", "mounts": [
            {"source": "kubelite-shm", "target": shm, "fstype": "tmpfs", "flags": MS_NOSUID | MS_NODEV | MS_NOEXEC,
             "data": "mode=1777,size=65536k"},
            *({"source": f"/proc/{meta['pid']}/ns/{os.path.basename(t)}", "target": t, "flags": MS_BIND}
              for t in pins.values())]})]
        if net is not None and "network" in kinds:
            undo.push_async_callback(asyncio.to_thread, net.teardown_pod, sid)
            steps.append(asyncio.to_thread(_setup_pod, net, sid, f"/proc/{meta['pid']}/ns/net"))
        results = await asyncio.gather(*steps, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        if len(results) > 1:
            meta["ip"] = results[1].ip
        meta["state"] = cri.PodSandboxState.READY.value
        await asyncio.to_thread(_finish, d, cfg, meta)
        undo.pop_all()
    return meta


def free_dirs(root: str) -> DirPool:
    """Removed sandboxes' directories, kept for the next ones (see ``dirpool``)."""
    return DirPool(os.path.join(root, "sandboxes.free"))


def _prepare(d: str, cfg: cri.PodSandboxConfig, pins: list[str], cgroup: str, resources: dict[str, Any]) -> bool:
    """The sandbox's directory (a recycled one when there is one) with ``shm/``, ``resolv.conf``, ``hostname``
    and the pins' (empty) files, then the pod cgroup (:func:`_pod_cgroup`'s answer)."""
    reused = free_dirs(os.path.dirname(os.path.dirname(d))).take(d)
    os.makedirs(os.path.join(d, "shm"), exist_ok=reused)
    if pins:
        os.makedirs(os.path.join(d, "ns"), exist_ok=True)
        for target in pins:
            open(target, "a").close()
    for name, content in (("resolv.conf", resolv_content(cfg)), ("hostname", cfg.hostname + "\n")):
        with open(os.path.join(d, name), "w") as f:
            f.write(content)
    return _pod_cgroup(cgroup, resources)


def _finish(d: str, cfg: cri.PodSandboxConfig, meta: dict[str, Any]) -> None:
    """``hosts`` (it holds the pod's IP) and the record that makes the sandbox exist for listings."""
    with open(os.path.join(d, "hosts"), "w") as f:
        f.write(hosts_content(cfg, meta["ip"]))
    _write(meta)


def _pod_cgroup(path: str, resources: dict[str, Any]) -> bool:
    """Make the pod's cgroup with its pod-level limits (OCI ``resources``); True when this call made it
    (False: it existed, e.g. a previous sandbox's, and only got the limits written again)."""
    existed = cgroupfs.manager().exists(path.strip("/"))
    cgroupfs.create(path, resources)
    return not existed


async def _release(fs: ForkServerClient, meta: dict[str, Any]) -> None:
    """Kill the pause process and unmount the namespace files (idempotent)."""
    pid, st = meta.get("pid"), meta.get("starttime")
    if pid and st and state.alive(pid, st):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for path in meta.get("ns", {}).values():
        await fs.call({"op": "umount", "target": path, "flags": MNT_DETACH})


async def stop(fs: ForkServerClient, meta: dict[str, Any], net: network.NodeNetwork | None) -> None:
    """Stop the sandbox: pause process and namespaces gone, network released; files kept for status."""
    if net is not None and meta.get("ip"):
        await asyncio.to_thread(net.teardown_pod, meta["id"])
    await _release(fs, meta)
    meta["state"] = cri.PodSandboxState.NOTREADY.value
    _write(meta)


async def remove(fs: ForkServerClient, meta: dict[str, Any], net: network.NodeNetwork | None) -> None:
    """Remove everything the sandbox made (after ``stop``; calls it when needed)."""
    if meta.get("state") != cri.PodSandboxState.NOTREADY.value:
        await stop(fs, meta, net)
    await fs.call({"op": "umount", "target": os.path.join(meta["dir"], "shm"), "flags": MNT_DETACH})
    if meta.get("own_cgroup"):
        await asyncio.to_thread(cgroupfs.destroy, meta["cgroup"], 5.0, True)
    root = os.path.dirname(os.path.dirname(meta["dir"]))
    await asyncio.to_thread(free_dirs(root).give, meta["dir"])


def status(meta: dict[str, Any]) -> cri.PodSandboxStatus:
    cfg = meta["config"]
    ready = meta.get("state") == cri.PodSandboxState.READY.value
    if ready and meta.get("pid") and not state.alive(meta["pid"], meta["starttime"]):
        ready = False  # the pause process died: the namespaces may be pinned, but the pod is broken
    md = cfg["metadata"]
    return cri.PodSandboxStatus(
        id=meta["id"], metadata=cri.PodSandboxMetadata(**md),
        state=cri.PodSandboxState.READY if ready else cri.PodSandboxState.NOTREADY,
        created_at=meta["created_at"], ip=meta.get("ip"), labels=dict(cfg.get("labels") or {}) | meta.get("labels", {}),
        annotations=dict(cfg.get("annotations") or {}), runtime_handler=meta.get("handler", "kubelite"),
        netns_path=meta["ns"].get("network"), pid=meta.get("pid"))


_loaded: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}   # meta.json path → (its stat, its record)


def load(root: str, sid: str) -> dict[str, Any] | None:
    """The sandbox's record (a copy: top-level keys may be changed), read again only when meta.json changed
    (every status and listing asks: the kubelet's syncs, PLEG's relist each second)."""
    path = os.path.join(root, "sandboxes", sid, "meta.json")
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        _loaded.pop(path, None)
        return None
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _loaded.get(path)
    if hit is None or hit[0] != key:
        meta = state.read_json(path)
        if meta is None:
            return None
        if len(_loaded) >= 4096:
            _loaded.clear()
        hit = _loaded[path] = (key, meta)
    return dict(hit[1])


def _write(meta: dict[str, Any]) -> None:
    path = os.path.join(meta["dir"], "meta.json")
    _loaded.pop(path, None)                      # (read again: our own writes never depend on the stat)
    state.write_json(path, meta, recycle=True)


def list_ids(root: str) -> list[str]:
    return state.list_ids(os.path.join(root, "sandboxes"))


def dump(meta: dict[str, Any]) -> str:
    return json.dumps(meta, indent=2)
