"""Every demonstration in manifests/course applied on a live cluster, and the claim its README makes checked.

kubectl (exec/logs/wait) and the kubelite CLI run as a user would run them, with ``kubelite`` on PATH;
the scripts run as they are.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.observability.conftest import REPO, Cluster, wait_for

pytestmark = pytest.mark.e2e
COURSE = REPO / "manifests" / "course"


@pytest.fixture(scope="module")
def path_env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The cluster's environment with a ``kubelite`` command on PATH (as an installed kubelite has)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    wrapper = bin_dir / "kubelite"
    wrapper.write_text(f"#!/bin/sh\nexec {os.sys.executable} -m kubelite \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = cluster.env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def sh(env: dict[str, str], *argv: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(argv), capture_output=True, text=True, env=env, cwd=str(REPO), timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def inspect(cluster: Cluster, pod: str) -> dict[str, Any]:
    return json.loads(cluster.kubelite("inspect", "pod", pod, "-o", "json").stdout)


@pytest.fixture
def applied(cluster: Cluster) -> Iterator[list[str]]:
    """Manifests the test applies; deleted afterwards (and waited for)."""
    files: list[str] = []
    yield files
    for f in reversed(files):
        cluster.kubectl("delete", "-f", f, "--ignore-not-found", "--wait=true", "--timeout=60s", check=False)


def test_namespace_demos(cluster: Cluster, applied: list[str]) -> None:
    names = ["01-pid-namespace", "02-mount-namespace", "03-uts-namespace", "04-ipc-namespace", "05-user-namespace"]
    for n in names:
        applied.append(str(COURSE / f"{n}.yaml"))
        cluster.kubectl("apply", "-f", str(COURSE / f"{n}.yaml"))
    for pod in ("pid-demo", "pid-shared-demo", "mnt-demo", "uts-demo", "ipc-demo", "ipc-neighbour", "userns-demo"):
        cluster.wait_running(pod, 120)

    # 01: own process tree, the command is PID 1; shareProcessNamespace shows the other container too
    ps = cluster.kubectl("exec", "pid-demo", "-c", "a", "--", "ps", "-o", "pid,args").stdout
    assert re.search(r"^\s*1\s+sleep 3600", ps, re.M) and "3601" not in ps, ps
    shared = cluster.kubectl("exec", "pid-shared-demo", "-c", "a", "--", "ps", "-o", "pid,args").stdout
    assert "sleep 3600" in shared and "sleep 3601" in shared, shared

    # 02: the file is in the writer's upper dir only
    assert cluster.kubectl("exec", "mnt-demo", "-c", "writer", "--", "cat", "/tmp/mnt-demo.txt").stdout.strip() == \
        "written-inside"
    assert cluster.kubectl("exec", "mnt-demo", "-c", "other", "--", "cat", "/tmp/mnt-demo.txt",
                           check=False).returncode != 0
    assert not Path("/tmp/mnt-demo.txt").exists()
    doc = inspect(cluster, "mnt-demo")
    writer = next(c for c in doc["containers"] if c["name"] == "writer")
    assert any(ch["path"] == "/tmp/mnt-demo.txt" for ch in writer["rootfs"]["upper"]["changes"])
    assert Path(writer["rootfs"]["upperdir"], "tmp/mnt-demo.txt").read_text().strip() == "written-inside"

    # 03: the pod's hostname, not the host's
    assert cluster.kubectl("exec", "uts-demo", "--", "hostname").stdout.strip() == "course-box"
    assert socket.gethostname() != "course-box"

    # 04: shared /dev/shm and IPC namespace inside the pod, not with the neighbour
    wait_for(lambda: "hello-from-producer" in cluster.kubectl("logs", "ipc-demo", "-c", "consumer").stdout, 30,
             "the consumer to read the producer's segment")
    assert "segment" not in cluster.kubectl("exec", "ipc-neighbour", "--", "ls", "/dev/shm").stdout
    ipc = inspect(cluster, "ipc-demo")["namespaces"]["ipc"]["members"]
    assert ipc["producer"]["inode"] == ipc["consumer"]["inode"] and not ipc["producer"]["host"]
    assert inspect(cluster, "ipc-neighbour")["namespaces"]["ipc"]["members"]["main"]["inode"] != \
        ipc["producer"]["inode"]

    # 05: root inside, an unprivileged uid outside
    assert cluster.kubectl("exec", "userns-demo", "--", "id", "-u").stdout.strip() == "0"
    uid_map = cluster.kubectl("exec", "userns-demo", "--", "cat", "/proc/self/uid_map").stdout.split()
    assert uid_map[0] == "0" and int(uid_map[1]) > 0, uid_map
    pid = inspect(cluster, "userns-demo")["containers"][0]["pid"]
    host_uid = next(l.split()[1] for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("Uid:"))
    assert int(host_uid) == int(uid_map[1])


def test_cgroup_demos(cluster: Cluster, applied: list[str]) -> None:
    for n in ("07-memory-oom", "08-cpu-quota", "14-pod-cgroups"):
        applied.append(str(COURSE / f"{n}.yaml"))
        cluster.kubectl("apply", "-f", str(COURSE / f"{n}.yaml"))

    # 07: OOMKilled, exit 137, never "survived"
    def oom(p: dict[str, Any]) -> bool:
        cs = ((p.get("status") or {}).get("containerStatuses") or [{}])[0]
        return bool((cs.get("state") or {}).get("terminated"))
    pod = cluster.wait_pod("oom-demo", oom, 90, what="terminated")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137), term
    assert pod["status"]["phase"] == "Failed"
    log = cluster.kubectl("logs", "oom-demo").stdout
    assert "allocating 100 MB" in log and "survived" not in log, log

    # 14: requests/limits → cgroup files
    cluster.wait_running("cgroups-demo", 90)
    files = inspect(cluster, "cgroups-demo")["containers"][0]["cgroup"]["files"]
    if "cpu.shares" in files:
        assert (files["cpu.shares"], files["cpu.cfs_quota_us"], files["cpu.cfs_period_us"]) == \
            ("256", "50000", "100000")
        assert files["memory.limit_in_bytes"] == str(64 * 2 ** 20)
    else:
        assert files["cpu.max"] == "50000 100000" and files["memory.max"] == str(64 * 2 ** 20)

    # 08: top shows about the 250m limit
    cluster.wait_running("cpu-quota-demo", 90)

    def near_limit() -> bool:
        out = cluster.kubelite("top", "pod", "cpu-quota-demo").stdout.splitlines()[-1].split()
        return 150 <= int(out[1].rstrip("m")) <= 290
    wait_for(near_limit, 60, "top near 250m", interval=0.5)
    assert inspect(cluster, "cpu-quota-demo")["containers"][0]["cgroup"]["files"].get("cpu.cfs_quota_us",
                                                                                      "25000") == "25000"


def _cpu_seconds(doc: dict[str, Any]) -> dict[str, float]:
    out = {}
    for c in doc["containers"]:
        files = c["cgroup"]["files"]
        if "cpuacct.usage" in files:
            out[c["name"]] = int(files["cpuacct.usage"]) / 1e9
        else:
            out[c["name"]] = int(dict(l.split() for l in files["cpu.stat"].splitlines())["usage_usec"]) / 1e6
    return out


def test_cpu_shares_demo(cluster: Cluster, applied: list[str]) -> None:
    applied.append(str(COURSE / "09-cpu-shares.yaml"))
    cluster.kubectl("apply", "-f", applied[-1])
    cluster.wait_running("shares-demo", 90)
    first = inspect(cluster, "shares-demo")
    files = {c["name"]: c["cgroup"]["files"] for c in first["containers"]}
    if "cpu.shares" in files["big"]:
        assert (files["big"]["cpu.shares"], files["small"]["cpu.shares"]) == ("1536", "512")
    for c in ("big", "small"):           # both on one core: shares are weighed per core
        st = cluster.kubectl("exec", "shares-demo", "-c", c, "--", "cat", "/proc/1/status").stdout
        assert "Cpus_allowed_list:\t0\n" in st, st
    t0 = _cpu_seconds(first)
    time.sleep(6)                       # the measurement window itself, not a wait for a condition
    t1 = _cpu_seconds(inspect(cluster, "shares-demo"))
    big, small = t1["big"] - t0["big"], t1["small"] - t0["small"]
    ratio = big / max(1e-6, small)
    assert ratio > 2.0, f"big used {big:.2f}s, small {small:.2f}s (ratio {ratio:.2f}, expected about 3)"


def test_image_demos(cluster: Cluster, path_env: dict[str, str], applied: list[str]) -> None:
    out = sh(path_env, str(COURSE / "06-overlay.sh"), str(cluster.image_root)).stdout
    applied.append(str(COURSE / "06-overlay.yaml"))
    assert "COPY data-3.txt /data/3.txt" in out
    one, two = inspect(cluster, "overlay-one"), inspect(cluster, "overlay-two")
    l1, l2 = one["containers"][0]["rootfs"], two["containers"][0]["rootfs"]
    assert len(l1["lowerdirs"]) == 4 and l1["lowerdirs"] == l2["lowerdirs"]          # the same dirs on disk
    assert l1["upperdir"] != l2["upperdir"]
    assert [l["createdBy"].split("in")[0].strip()[-20:] for l in l1["layers"]][0].endswith("/data/3.txt") or \
        "3.txt" in l1["layers"][0]["createdBy"]
    assert all(c["size"] < 100 for c in l1["upper"]["changes"])                        # only its own write

    out = sh(path_env, str(COURSE / "10-image-layering.sh"), str(cluster.image_root)).stdout
    applied.append(str(COURSE / "10-image-layering.yaml"))
    assert "the big file is gone" in out
    assert re.search(r"D\s+/?big\.bin", out) or "big.bin" in out, out
    wait_for(lambda: any(w in cluster.kubectl("logs", "layering-demo").stdout for w in ("No such file", "can't access")),
             30, "layering-demo's ls to report /big.bin missing")   # Ready comes before the shell's first line
    layers = inspect(cluster, "layering-demo")["containers"][0]["rootfs"]["layers"]
    top = Path(layers[0]["lowerdir"]) / "big.bin"
    st = os.lstat(top)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0                             # the whiteout
    assert (Path(layers[1]["lowerdir"]) / "big.bin").stat().st_size == 2000000       # still in the layer below


def test_pod_from_namespaces_script(path_env: dict[str, str]) -> None:
    out = sh(path_env, str(COURSE / "11-pod-from-namespaces.sh"), timeout=60).stdout
    rows = {l.split()[0]: re.findall(r"\[(\d+)\]", l) for l in out.splitlines() if l[:4].strip() in
            ("net", "ipc", "uts", "pid", "mnt")}
    for ns in ("net", "ipc", "uts"):
        assert len(set(rows[ns])) == 1, out
    for ns in ("pid", "mnt"):
        assert rows[ns][1] != rows[ns][2] and rows[ns][1] != rows[ns][0], out
    assert "hostname in c1: hand-made-pod" in out
    wait_for(lambda: not subprocess.run(["pgrep", "-f", "sleep 30[012]$"], capture_output=True).stdout, 10,
             "the script's processes to be gone")


def test_controller_demos(cluster: Cluster, path_env: dict[str, str], applied: list[str]) -> None:
    applied.append(str(COURSE / "12-replicaset-self-healing.yaml"))
    cluster.kubectl("apply", "-f", applied[-1])
    with cluster.client() as c:
        def ready(n: int) -> Any:
            return lambda: (c.get("replicasets", "healer", "default").get("status") or {}).get("readyReplicas") == n
        wait_for(ready(3), 120, "3 ready healer pods")
        pods = {p["metadata"]["name"] for p in c.list("pods", "default", label_selector="app=healer")["items"]}
        victim = sorted(pods)[0]
        cluster.kubectl("delete", "pod", victim, "--wait=false")

        def healed() -> bool:
            now = {p["metadata"]["name"] for p in c.list("pods", "default", label_selector="app=healer")["items"]
                   if not p["metadata"].get("deletionTimestamp")}
            return len(now) == 3 and victim not in now
        wait_for(healed, 60, "a replacement pod")
        wait_for(ready(3), 90, "3 ready again")
        cluster.kubectl("scale", "rs/healer", "--replicas=1")
        wait_for(lambda: len([p for p in c.list("pods", "default", label_selector="app=healer")["items"]]) == 1, 60,
                 "scaled down to 1")
    events = cluster.kubelite("events", "--for", "replicaset/healer").stdout
    assert "SuccessfulCreate" in events and "SuccessfulDelete" in events, events

    applied.append(str(COURSE / "13-deployment-rollout.yaml"))
    out = sh(path_env, str(COURSE / "13-deployment-rollout.sh"), timeout=400).stdout
    assert "successfully rolled out" in out, out
    with cluster.client() as c:
        d = c.get("deployments", "web", "default")
        env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        assert env == [{"name": "VERSION", "value": "1"}]                              # rolled back
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert "ScalingReplicaSet" in out, out
