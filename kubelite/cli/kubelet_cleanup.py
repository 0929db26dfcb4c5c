"""Node clean-up after a kubelet, for ``kubelite up`` (on exit) and ``kubelite down`` (after a crash).

Every kubelet writes ``<root-dir>/node.json`` (node name, runtime root, cgroup root, cluster CIDR). For
each such file under ``<data-dir>/kubelet`` this stops and removes every sandbox and container in that
runtime root, removes the pods' directories and the node's cgroup tree, and finally deletes the shared
bridge when no pod veth is left on it. The API objects are left alone: the next ``up`` starts the pods
again. Idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def node_markers(data_dir: Path) -> list[Path]:
    base = Path(data_dir) / "kubelet"
    return sorted(p for p in [base / "node.json", *base.glob("*/node.json")] if p.is_file())


async def _clear_runtime(info: dict[str, Any]) -> int:
    from kubelet.runtime.service import Runtime
    removed = 0
    async with Runtime(info["runtimeRoot"], node_name=info["nodeName"], cgroup_root=info["cgroupRoot"]) as rt:
        for sb in await rt.list_pod_sandboxes():
            for c in await rt.list_containers(sb.id):
                await rt.stop_container(c.id, 0)
                await rt.remove_container(c.id)
            await rt.stop_pod_sandbox(sb.id)
            await rt.remove_pod_sandbox(sb.id)
            removed += 1
    return removed


def _remove_cgroups(rel: str) -> None:
    """rmdir the node's cgroup tree in every hierarchy (runc's ``name=systemd`` too, and a v2 unified
    root), then its ancestors (the shared ``kubelite/``) where no other node is left in them."""
    rel = rel.strip("/")
    if not rel:
        return
    top = Path("/sys/fs/cgroup")
    roots = [top / c for c in os.listdir(top) if (top / c).is_dir()] + [top]
    for root in roots:
        base = root / rel
        if base.is_dir():
            subprocess.run(["find", str(base), "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
                           check=False, stderr=subprocess.DEVNULL)
        for parent in base.parents:
            if parent == root or root not in parent.parents:
                break
            try:
                parent.rmdir()            # fails (ENOTEMPTY/EBUSY) while another node still lives there
            except OSError:
                break


def _bridge_addresses(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge], capture_output=True, text=True,
                         check=False).stdout
    return [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]


def _remove_node_gateway(info: dict[str, Any]) -> None:
    """Take a (crashed) node's gateway address off the bridge, as the kubelet does when it stops its pods."""
    if not info.get("podCidr"):
        return
    try:
        from kubelet.runtime.network import NodeNetwork
        NodeNetwork(info["podCidr"], info.get("clusterCidr") or "10.244.0.0/16",
                    Path(info["runtimeRoot"]) / "ipam").remove()
    except Exception as exc:                        # clean as much as we can
        logger.warning("node %s: gateway address not removed: %s", info.get("nodeName"), exc)


def _remove_bridge_if_unused() -> None:
    """Delete the shared bridge only when no other node uses it: no pod veth on the host and no node's
    gateway address left on it (every kubelet takes its own off when it stops its pods)."""
    try:
        from kubelet.runtime.network import DEFAULT_BRIDGE, VETH_PREFIX, remove_bridge
    except ImportError:
        return
    links = os.listdir("/sys/class/net")
    if DEFAULT_BRIDGE not in links:
        return
    if any(link.startswith(VETH_PREFIX) and link != DEFAULT_BRIDGE for link in links):
        return                                      # another node on this host still has pods
    if _bridge_addresses(DEFAULT_BRIDGE):
        return                                      # another node is up (its gateway is on the bridge)
    remove_bridge(DEFAULT_BRIDGE)


def cleanup(data_dir: Path, *, bridge: bool = True) -> None:
    for marker in node_markers(Path(data_dir)):
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        try:
            n = asyncio.run(_clear_runtime(info))
            logger.info("node %s: removed %d pod sandboxes", info.get("nodeName"), n)
        except Exception as exc:                    # clean as much as we can
            logger.warning("node %s: runtime clean-up failed: %s", info.get("nodeName"), exc)
        shutil.rmtree(marker.parent / "pods", ignore_errors=True)
        _remove_cgroups(info.get("cgroupRoot", ""))
        _remove_node_gateway(info)
    if bridge:
        _remove_bridge_if_unused()
