"""``/inspect/pods/{ns}/{pod}`` and ``/inspect/node``: the kernel objects behind a pod, read from /proc and /sys.

For a pod: the sandbox's and each container's host PID (and the PIDs inside), every namespace's inode
(pid, mnt, net, ipc, uts, user, cgroup) with who shares it and whether it is the host's (the kubelet's
own), the cgroup of the pod and of each container with its limit files and usage, the container's
overlay root (each lowerdir ↔ image layer digest ↔ the instruction that made it, the upperdir and
what the container changed there), and the network (eth0's address, the host veth and its bridge).
Read-only: nothing is written; the network is read by ``nsenter -n ip`` in a child process. The
facts come from the kernel, so they hold for runc and crun containers too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

NAMESPACES = ("pid", "mnt", "net", "ipc", "uts", "user", "cgroup")
CGROUP_BASE = Path("/sys/fs/cgroup")
_V1_FILES = {"memory": ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.max_usage_in_bytes",
                        "memory.failcnt", "memory.oom_control"),
             "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpu.stat"),
             "cpuacct": ("cpuacct.usage",),
             "pids": ("pids.max", "pids.current")}
_V2_FILES = ("memory.max", "memory.current", "memory.peak", "memory.events", "cpu.max", "cpu.weight", "cpu.stat",
             "pids.max", "pids.current")
MAX_CHANGES = 200


def _read(path: Path | str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def ns_inode(pid: int | str, ns: str) -> int | None:
    """The inode of ``/proc/<pid>/ns/<ns>`` (``net:[4026531992]`` → 4026531992)."""
    try:
        link = os.readlink(f"/proc/{pid}/ns/{ns}")
    except OSError:
        return None
    m = re.search(r"\[(\d+)\]", link)
    return int(m.group(1)) if m else None


def cgroup_paths(pid: int) -> dict[str, str]:
    """controller → path from ``/proc/<pid>/cgroup`` ("" key = the v2 unified path)."""
    out: dict[str, str] = {}
    for line in (_read(f"/proc/{pid}/cgroup") or "").splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


def cgroup_version() -> int:
    return 2 if (CGROUP_BASE / "cgroup.controllers").exists() else 1


def cgroup_files(paths: dict[str, str]) -> dict[str, Any]:
    """The limit and usage files of a cgroup (``paths`` as :func:`cgroup_paths` gives them)."""
    files: dict[str, str] = {}
    if cgroup_version() == 2:
        d = CGROUP_BASE / paths.get("", "/").lstrip("/")
        for f in _V2_FILES:
            v = _read(d / f)
            if v is not None:
                files[f] = v
        return {"version": 2, "path": paths.get("", ""), "dir": str(d), "files": files}
    dirs = {}
    for controller, names in _V1_FILES.items():
        if controller not in paths:
            continue
        d = CGROUP_BASE / controller / paths[controller].lstrip("/")
        dirs[controller] = str(d)
        for f in names:
            v = _read(d / f)
            if v is not None:
                files[f] = v
    return {"version": 1, "path": paths.get("memory") or paths.get("cpu") or "", "dirs": dirs, "files": files}


def cgroup_of_path(rel: str) -> dict[str, Any]:
    """Like :func:`cgroup_files` for a cgroup path given directly (the same path in every hierarchy)."""
    if cgroup_version() == 2:
        return cgroup_files({"": rel})
    return cgroup_files({c: rel for c in _V1_FILES})


def overlay_root(pid: int) -> dict[str, Any] | None:
    """The overlay mounted on the process's ``/``: lowerdirs (top first), upperdir, workdir."""
    for line in (_read(f"/proc/{pid}/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or fields[4] != "/":
            continue
        fstype, _source, options = (right.split(" ", 2) + ["", ""])[:3]
        if fstype != "overlay":
            return {"type": fstype}
        opts: dict[str, str] = {}
        for o in re.split(r"(?<!\\),", options):
            k, _, v = o.partition("=")
            opts[k] = v.replace("\\,", ",")
        lowers = [p for p in re.split(r"(?<!\\):", opts.get("lowerdir", "")) if p]
        return {"type": "overlay", "lowerdirs": lowers, "upperdir": opts.get("upperdir", ""),
                "workdir": opts.get("workdir", "")}
    return None


def upper_changes(upper: str, limit: int = MAX_CHANGES) -> dict[str, Any]:
    """What the container changed: files in its upperdir (added/modified), whiteouts (deleted), opaque dirs."""
    changes: list[dict[str, Any]] = []
    total = 0
    size = 0
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = "/" + os.path.relpath(dirpath, upper) if dirpath != upper else "/"
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            path = os.path.join(rel_dir, name)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                kind = "deleted"
            elif stat.S_ISDIR(st.st_mode):
                try:
                    opaque = os.getxattr(full, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
                except OSError:
                    opaque = False
                if not opaque:
                    continue
                kind = "opaque-dir"
            else:
                kind = "written"
                size += st.st_size
            total += 1
            if len(changes) < limit:
                changes.append({"path": path, "change": kind, "size": st.st_size if kind == "written" else 0})
    return {"count": total, "bytes": size, "changes": changes, "truncated": total > len(changes)}


def layer_table(image: Any) -> dict[str, dict[str, Any]]:
    """lowerdir path → {digest, diffID, size, createdBy} for a stored image (history entries with
    ``empty_layer`` make no layer, so layers are matched to the others in order)."""
    history = [h for h in (image.config or {}).get("history") or [] if not h.get("empty_layer")]
    out = {}
    for i, layer in enumerate(image.layers):
        h = history[i] if i < len(history) else {}
        out[os.path.realpath(str(layer.path))] = {
            "index": i, "digest": layer.digest, "diffID": layer.diff_id, "size": layer.size,
            "createdBy": h.get("created_by", ""), "comment": h.get("comment", "")}
    return out


def processes(pid: int) -> list[dict[str, Any]]:
    """The processes in ``pid``'s PID namespace that share its cgroup, with the PID each has inside."""
    paths = cgroup_paths(pid)
    key = "memory" if "memory" in paths else ""
    procs_dir = CGROUP_BASE / ("memory" if key else "") / paths.get(key, "/").lstrip("/")
    out = []
    for p in (_read(procs_dir / "cgroup.procs") or "").split():
        status = _read(f"/proc/{p}/status") or ""
        nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [p])
        out.append({"hostPID": int(p), "pidInContainer": int(nspid[-1]), "command": _cmdline(int(p))})
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def id_map(pid: int) -> str:
    return " ".join((_read(f"/proc/{pid}/uid_map") or "").split())


def host_veth_by_index(index: int) -> dict[str, Any] | None:
    """The host interface with ifindex ``index``, and its bridge (``master``)."""
    for d in Path("/sys/class/net").iterdir():
        if _read(d / "ifindex") == str(index):
            master = d / "master"
            return {"hostVeth": d.name, "bridge": os.path.basename(os.readlink(master)) if master.exists() else ""}
    return None


async def network_of(pid: int) -> dict[str, Any]:
    """eth0's address and its host-side veth and bridge, read from the pod's network namespace."""
    async def ip(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec("nsenter", "-t", str(pid), "-n", "ip", "-o", *args,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return out.decode(errors="replace")
    links, addrs = await asyncio.gather(ip("link", "show"), ip("-4", "addr", "show"))
    net: dict[str, Any] = {"interfaces": []}
    for line in links.splitlines():
        m = re.match(r"\d+:\s+([^:@]+)(?:@if(\d+))?:", line)
        if not m:
            continue
        iface: dict[str, Any] = {"name": m.group(1)}
        if m.group(2):
            iface["peerIndex"] = int(m.group(2))
            host = await asyncio.to_thread(host_veth_by_index, int(m.group(2)))
            if host:
                iface.update(host)
                net.update(host)
        iface["addresses"] = [a.split()[3] for a in addrs.splitlines() if a.split()[1] == iface["name"]]
        if iface["name"] == "eth0" and iface["addresses"]:
            net["ip"] = iface["addresses"][0]
        net["interfaces"].append(iface)
    return net


def namespaces(pids: dict[str, int]) -> dict[str, Any]:
    """Per namespace type: each member's inode, which members share it, and whether it is the host's."""
    out: dict[str, Any] = {}
    for ns in NAMESPACES:
        host = ns_inode("self", ns)
        inodes = {who: ns_inode(pid, ns) for who, pid in pids.items()}
        groups: dict[int, list[str]] = {}
        for who, ino in inodes.items():
            if ino is not None:
                groups.setdefault(ino, []).append(who)
        out[ns] = {"host": host, "members": {who: {"inode": ino, "host": ino == host,
                                                    "sharedWith": [o for o in groups.get(ino or -1, []) if o != who]}
                                              for who, ino in inodes.items()}}
    return out


def _container_facts(pid: int, layers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    facts: dict[str, Any] = {"cgroup": cgroup_files(cgroup_paths(pid)), "processes": processes(pid),
                             "uidMap": id_map(pid)}
    root = overlay_root(pid)
    if root and root.get("type") == "overlay":
        root["layers"] = [{"lowerdir": d, **layers.get(os.path.realpath(d), {})} for d in root["lowerdirs"]]
        if root.get("upperdir"):
            root["upper"] = upper_changes(root["upperdir"])
    facts["rootfs"] = root
    return facts


async def pod_facts(kubelet: Any, pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    rp = await kubelet.rm.runtime_pod(meta["uid"])
    sandbox = rp.sandbox
    out: dict[str, Any] = {"kind": "PodInspection", "namespace": meta.get("namespace"), "name": meta["name"],
                           "uid": meta["uid"], "node": kubelet.config.node_name, "qosClass":
                           (pod.get("status") or {}).get("qosClass", ""), "cgroupVersion": cgroup_version()}
    pids: dict[str, int] = {}
    if sandbox is not None:
        out["sandbox"] = {"id": sandbox.id, "state": sandbox.state.value, "pid": sandbox.pid, "ip": sandbox.ip,
                          "netns": sandbox.netns_path}
        if sandbox.pid:
            pids["sandbox"] = sandbox.pid
    containers = []
    store = getattr(getattr(kubelet.image_manager, "images", None), "store", None)
    spec = pod.get("spec") or {}
    order = [x.get("name") for x in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
    for c in sorted(rp.running(), key=lambda c: order.index(c.metadata.name) if c.metadata.name in order else 99):
        entry: dict[str, Any] = {"name": c.metadata.name, "id": c.id, "pid": c.pid, "image": c.image,
                                 "imageID": c.image_id, "attempt": c.metadata.attempt}
        layers: dict[str, dict[str, Any]] = {}
        if store is not None:
            try:
                image = await asyncio.to_thread(store.get, c.image_id or c.image)
                if image is not None:
                    layers = await asyncio.to_thread(layer_table, image)
            except Exception as exc:  # noqa: BLE001 - a missing image only loses the layer names
                logger.debug("image %s: %s", c.image_id, exc)
        if c.pid:
            pids[c.metadata.name] = c.pid
            entry.update(await asyncio.to_thread(_container_facts, c.pid, layers))
        containers.append(entry)
    out["containers"] = containers
    out["namespaces"] = await asyncio.to_thread(namespaces, pids)
    cgs = [c["cgroup"]["path"] for c in containers if c.get("cgroup")]
    if cgs:                                  # a container's cgroup is <pod cgroup>/<container id>
        out["podCgroup"] = await asyncio.to_thread(cgroup_of_path, os.path.dirname(cgs[0].rstrip("/")))
    any_pid = pids.get("sandbox") or next(iter(pids.values()), None)
    if any_pid and out["namespaces"]["net"]["members"].get("sandbox" if "sandbox" in pids else
                                                           next(iter(pids)), {}).get("host") is False:
        out["network"] = await network_of(any_pid)
    elif any_pid:
        out["network"] = {"hostNetwork": True}
    return out


def _bridges() -> list[dict[str, Any]]:
    out = []
    for d in sorted(Path("/sys/class/net").iterdir()):
        if (d / "bridge").is_dir() and d.name.startswith("kubelite"):
            members = sorted(p.name for p in (d / "brif").iterdir()) if (d / "brif").is_dir() else []
            out.append({"name": d.name, "members": members})
    return out


async def node_facts(kubelet: Any) -> dict[str, Any]:
    rps = await kubelet.rm.runtime_pods()
    pods = []
    for uid, rp in rps.items():
        pod = kubelet.pods.get(uid) or {}
        meta = pod.get("metadata") or {}
        pods.append({"namespace": meta.get("namespace"), "name": meta.get("name"), "uid": uid,
                     "sandboxPID": rp.sandbox.pid if rp.sandbox else None, "ip": rp.sandbox.ip if rp.sandbox else None,
                     "containers": [{"name": c.metadata.name, "pid": c.pid, "state": c.state.value}
                                    for c in rp.containers]})
    cgroup_root = getattr(kubelet.runtime, "cgroup_root", "") or ""
    qos = {}
    for q in ("kubepods", "kubepods/burstable", "kubepods/besteffort"):
        qos[q] = await asyncio.to_thread(cgroup_of_path, f"/{cgroup_root}/{q}".replace("//", "/"))
    store = getattr(getattr(kubelet.image_manager, "images", None), "store", None)
    images = []
    if store is not None:
        for img in await asyncio.to_thread(store.list):
            images.append({"id": img.id, "names": list(img.names), "layers": [l.digest for l in img.layers]})
    shared: dict[str, int] = {}
    for img in images:
        for d in img["layers"]:
            shared[d] = shared.get(d, 0) + 1
    return {"kind": "NodeInspection", "name": kubelet.config.node_name, "kernel": os.uname().release,
            "cgroupVersion": cgroup_version(), "cgroupRoot": cgroup_root, "qosCgroups": qos,
            "bridges": await asyncio.to_thread(_bridges), "pods": pods, "images": images,
            "sharedLayers": {d: n for d, n in shared.items() if n > 1}}


def add_routes(app: web.Application, key: Any) -> None:
    """Register ``/inspect/...`` on the kubelet's app; ``key`` is the AppKey holding the Kubelet."""
    async def pod(request: web.Request) -> web.Response:
        kubelet = request.app[key]
        ns, name = request.match_info["ns"], request.match_info["pod"]
        found = next((p for p in kubelet.pods.values() if (p.get("metadata") or {}).get("namespace") == ns
                      and (p.get("metadata") or {}).get("name") == name), None)
        if found is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                      "message": f'pod "{name}" not found on this node', "reason": "NotFound",
                                      "code": 404}, status=404)
        return web.json_response(await pod_facts(kubelet, found))

    async def node(request: web.Request) -> web.Response:
        return web.json_response(await node_facts(request.app[key]))

    app.router.add_get("/inspect/pods/{ns}/{pod}", pod)
    app.router.add_get("/inspect/node", node)
