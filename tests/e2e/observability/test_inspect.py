"""``kubelite inspect pod`` on a real two-container pod, checked against the kernel from the test itself:
shared net/ipc/uts and separate mnt/pid namespace inodes equal to /proc/<pid>/ns/*, cgroup files equal to
what the requests and limits ask for, lowerdirs equal to the image's layers, and the pod's IP on eth0
with its host veth on a bridge. Also ``inspect node`` and the readable tree."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.e2e.observability.conftest import Cluster

pytestmark = pytest.mark.e2e


def _ns(pid: int, ns: str) -> int:
    return int(os.readlink(f"/proc/{pid}/ns/{ns}").split("[")[1].rstrip("]"))


def _pod() -> dict[str, Any]:
    def c(name: str, cpu_req: str, cpu_lim: str, mem: str) -> dict[str, Any]:
        return {"name": name, "image": "busybox:1.35", "command": ["sh", "-c", "echo hi > /tmp/was-here; sleep 3600"],
                "resources": {"requests": {"cpu": cpu_req, "memory": mem}, "limits": {"cpu": cpu_lim, "memory": mem}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "duo"},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [c("app", "250m", "500m", "64Mi"), c("side", "100m", "200m", "32Mi")]}}


def test_inspect_two_container_pod(cluster: Cluster) -> None:
    with cluster.client() as c:
        c.create("pods", _pod(), "default")
    try:
        pod = cluster.wait_running("duo", 90)
        doc = json.loads(cluster.kubelite("inspect", "pod", "duo", "-o", "json").stdout)
        assert doc["node"] == cluster.node and doc["uid"] == pod["metadata"]["uid"]
        pids = {"sandbox": doc["sandbox"]["pid"], **{x["name"]: x["pid"] for x in doc["containers"]}}
        assert set(pids) == {"sandbox", "app", "side"} and all(pids.values())
        nss = doc["namespaces"]
        for ns in ("net", "ipc", "uts"):
            inodes = {who: m["inode"] for who, m in nss[ns]["members"].items()}
            assert len(set(inodes.values())) == 1, (ns, inodes)
            assert inodes["app"] == _ns(pids["app"], ns) == _ns(pids["sandbox"], ns)
            assert nss[ns]["members"]["app"]["host"] is False
            assert set(nss[ns]["members"]["app"]["sharedWith"]) == {"sandbox", "side"}
        for ns in ("mnt", "pid"):
            app, side = nss[ns]["members"]["app"]["inode"], nss[ns]["members"]["side"]["inode"]
            assert app != side, ns
            assert app == _ns(pids["app"], ns) and side == _ns(pids["side"], ns)
            assert app != _ns(os.getpid(), ns)

        by = {x["name"]: x for x in doc["containers"]}
        files = {n: by[n]["cgroup"]["files"] for n in by}
        if doc["cgroupVersion"] == 1:
            assert int(files["app"]["memory.limit_in_bytes"]) == 64 * 2 ** 20
            assert int(files["side"]["memory.limit_in_bytes"]) == 32 * 2 ** 20
            assert (files["app"]["cpu.cfs_quota_us"], files["app"]["cpu.cfs_period_us"]) == ("50000", "100000")
            assert files["side"]["cpu.cfs_quota_us"] == "20000"
            assert (files["app"]["cpu.shares"], files["side"]["cpu.shares"]) == ("256", "102")
            assert int(files["app"]["memory.usage_in_bytes"]) > 0
        else:
            assert int(files["app"]["memory.max"]) == 64 * 2 ** 20
            assert files["app"]["cpu.max"] == "50000 100000"
        assert by["app"]["cgroup"]["path"].startswith(doc["podCgroup"]["path"].rstrip("/") + "/")
        assert f"pod{doc['uid']}" in doc["podCgroup"]["path"]
        assert any(p["pidInContainer"] == 1 and p["hostPID"] == pids["app"] for p in by["app"]["processes"])

        from kubelet.runtime.images import ImageStore
        image = ImageStore(cluster.image_root).get("busybox:1.35")
        assert image is not None
        expected = [os.path.realpath(str(layer.path)) for layer in reversed(image.layers)]
        rootfs = by["app"]["rootfs"]
        assert rootfs["type"] == "overlay"
        assert [os.path.realpath(d) for d in rootfs["lowerdirs"]] == expected
        assert [l["digest"] for l in rootfs["layers"]] == [l.digest for l in reversed(image.layers)]
        assert {"path": "/tmp/was-here", "change": "written", "size": 3} in rootfs["upper"]["changes"]

        net = doc["network"]
        names = [i["name"] for i in net["interfaces"]]
        assert "lo" in names
        pod = cluster.wait_running("duo")
        assert pod["status"].get("podIP"), pod["status"]     # eth0 ⇄ host veth on the bridge
        assert net["ip"].split("/")[0] == pod["status"]["podIP"], net
        assert "eth0" in names
        assert os.path.exists(f"/sys/class/net/{net['hostVeth']}")
        assert net["bridge"] and os.path.basename(os.readlink(f"/sys/class/net/{net['hostVeth']}/master")) == \
            net["bridge"]

        tree = cluster.kubelite("inspect", "pod", "duo").stdout
        assert "shared by sandbox, app, side" in tree
        assert "cpu.cfs_quota_us = 50000 / cpu.cfs_period_us = 100000 → 0.5 CPU" in tree or "cpu.max" in tree
        assert f"host veth {net['hostVeth']} on bridge {net['bridge']}" in tree

        node = json.loads(cluster.kubelite("inspect", "node", cluster.node, "-o", "json").stdout)
        assert any(p["name"] == "duo" and p["sandboxPID"] == pids["sandbox"] for p in node["pods"])
        assert any(net["hostVeth"] in b["members"] for b in node["bridges"])
        assert "QoS cgroups" in cluster.kubelite("inspect", "node", cluster.node).stdout
        bad = cluster.kubelite("inspect", "pod", "nope", check=False)
        assert bad.returncode == 1 and 'pods "nope" not found' in bad.stderr
    finally:
        cluster.delete_pod("duo")
