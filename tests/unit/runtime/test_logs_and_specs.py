"""Pure parts of the runtime: CRI log lines, OCI spec generation, mount options, pod manifests, snapshots."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from kubelet import cri
from kubelet.runtime.dirpool import process_umask
from kubelet.runtime import linux, oci, podspec
from kubelet.runtime.ociruntime import crilog, init
from kubelet.runtime import snapshots
from kubelet.runtime.snapshots import SnapshotError, Snapshotter

pytestmark = pytest.mark.unit


def _lines(buf: io.BytesIO) -> list[tuple[str, str, str]]:
    out = []
    for line in buf.getvalue().decode().splitlines():
        ts, stream, tag, text = line.split(" ", 3)
        assert ts.endswith("Z") and len(ts.split(".")[1]) == 10  # RFC3339Nano, 9 digits + Z
        out.append((stream, tag, text))
    return out


def test_cri_log_full_and_partial_lines() -> None:
    buf = io.BytesIO()
    log = crilog.CriLog(buf, "stdout")  # type: ignore[arg-type]
    log.feed(b"one\ntw")
    log.feed(b"o\nthree")
    log.feed(b"x" * (crilog.PARTIAL_MAX + 5))
    log.close()
    got = _lines(buf)
    assert got[:2] == [("stdout", "F", "one"), ("stdout", "F", "two")]
    assert got[2][1] == "P" and got[2][2].startswith("three")
    assert got[-1][1] == "F" and "".join(t for _s, _tag, t in got[2:]) == "three" + "x" * (crilog.PARTIAL_MAX + 5)


def test_rfc3339nano() -> None:
    assert crilog.rfc3339nano(1_475_713_029_669_794_202) == "2016-10-06T00:17:09.669794202Z"


def test_parse_options_and_secure_join(tmp_path: Path) -> None:
    flags, prop, data = init.parse_options(["nosuid", "ro", "rbind", "rprivate", "mode=755", "size=1k"])
    assert flags & init.MS_RDONLY and flags & init.MS_NOSUID and flags & init.MS_REC
    assert prop == init.PROPAGATION["rprivate"] and data == "mode=755,size=1k"
    (tmp_path / "etc").mkdir()
    (tmp_path / "evil").symlink_to("/etc")
    (tmp_path / "up").symlink_to("../../../../..")
    assert init.secure_join(str(tmp_path), "/evil/passwd") == f"{tmp_path}/etc/passwd"
    assert init.secure_join(str(tmp_path), "/up/x") == f"{tmp_path}/x"
    assert init.secure_join(str(tmp_path), "../../a/./b") == f"{tmp_path}/a/b"


def _cfg(**kw: object) -> cri.ContainerConfig:
    return cri.ContainerConfig(metadata=cri.ContainerMetadata("c"), image="img", **kw)  # type: ignore[arg-type]


VIEW = oci.SandboxView(namespaces={"network": "/ns/net", "ipc": "/ns/ipc", "uts": "/ns/uts"}, hostname="pod",
                       shm="/sb/shm", etc_files={"/etc/hosts": "/sb/hosts"})


def test_command_and_args_follow_kubernetes_rules() -> None:
    image = {"Entrypoint": ["/ep"], "Cmd": ["default"]}
    assert oci.process_args(_cfg(), image) == ["/ep", "default"]
    assert oci.process_args(_cfg(args=("a",)), image) == ["/ep", "a"]
    assert oci.process_args(_cfg(command=("/bin/sh",)), image) == ["/bin/sh"]
    assert oci.process_args(_cfg(command=("/bin/sh",), args=("-c", "x")), image) == ["/bin/sh", "-c", "x"]
    with pytest.raises(oci.SpecError):
        oci.process_args(_cfg(), {})


def test_generate_defaults() -> None:
    spec = oci.generate("id", _cfg(command=("true",), envs=(("A", "1"),),
                                   resources=cri.LinuxResources(cpu_quota=50000, cpu_period=100000, cpu_shares=512,
                                                                memory_limit_in_bytes=1 << 26)),
                        {"Env": ["PATH=/bin", "A=0"], "WorkingDir": "/w"}, [], VIEW, "/kubelite/n/pod/id", [])
    p = spec["process"]
    assert p["args"] == ["true"] and p["cwd"] == "/w"
    assert "A=1" in p["env"] and "PATH=/bin" in p["env"] and "HOSTNAME=pod" in p["env"]
    assert set(p["capabilities"]["bounding"]) == set(oci.DEFAULT_CAPS) and "CAP_SYS_ADMIN" not in p["capabilities"]["bounding"]
    lx = spec["linux"]
    assert {"type": "network", "path": "/ns/net"} in lx["namespaces"] and {"type": "pid"} in lx["namespaces"]
    assert {"type": "mount"} in lx["namespaces"]
    assert lx["resources"]["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}
    assert lx["resources"]["memory"] == {"limit": 1 << 26}
    assert lx["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert not any(d.get("type") == "b" and d["allow"] for d in lx["resources"]["devices"])  # no mknod of disks
    assert "/proc/kcore" in lx["maskedPaths"] and "/proc/sys" in lx["readonlyPaths"]
    dests = {m["destination"]: m for m in spec["mounts"]}
    assert dests["/dev/shm"]["source"] == "/sb/shm" and dests["/etc/hosts"]["source"] == "/sb/hosts"
    assert "ro" in dests["/sys"]["options"]


def test_generate_security_context() -> None:
    sec = cri.LinuxSecurityContext(run_as_user=1000, run_as_group=2000, readonly_rootfs=True,
                                   capabilities=cri.Capabilities(add=("NET_ADMIN",), drop=("KILL",)))
    spec = oci.generate("id", _cfg(command=("x",), security=sec), {}, [], VIEW, "", [])
    assert spec["process"]["user"] == {"uid": 1000, "gid": 2000, "additionalGids": []}
    assert spec["root"]["readonly"] is True
    caps = spec["process"]["capabilities"]["bounding"]
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps
    priv = oci.generate("id", _cfg(command=("x",), security=cri.LinuxSecurityContext(privileged=True)), {}, [],
                        VIEW, "", [])
    assert "CAP_SYS_ADMIN" in priv["process"]["capabilities"]["bounding"] and priv["linux"]["maskedPaths"] == []
    with pytest.raises(oci.SpecError, match="runAsNonRoot"):
        oci.generate("id", _cfg(command=("x",), security=cri.LinuxSecurityContext(run_as_non_root=True)), {}, [],
                     VIEW, "", [])
    with pytest.raises(oci.SpecError, match="unknown capability"):
        oci.generate("id", _cfg(command=("x",), security=cri.LinuxSecurityContext(
            capabilities=cri.Capabilities(add=("FLY",)))), {}, [], VIEW, "", [])


def test_image_user_resolved_from_its_passwd(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("app:x:1001:1002::/:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("staff:x:50:\n")
    assert oci.resolve_user("app", [str(tmp_path)]) == (1001, 1002)
    assert oci.resolve_user("app:staff", [str(tmp_path)]) == (1001, 50)
    assert oci.resolve_user("7:8", [str(tmp_path)]) == (7, 8)
    with pytest.raises(oci.SpecError):
        oci.resolve_user("nobody", [str(tmp_path)])


def test_snapshots_prepare_orders_layers_and_removes(tmp_path: Path) -> None:
    layers = [tmp_path / "l1", tmp_path / "l2"]
    for d in layers:
        d.mkdir()
    sn = Snapshotter(tmp_path / "snaps")
    [m] = sn.prepare("c1", layers)
    assert m.type == "overlay"
    assert f"lowerdir={layers[1]}:{layers[0]}" in m.options and "volatile" in m.options
    assert any(o.startswith("upperdir=") for o in m.options)
    with pytest.raises(SnapshotError):
        sn.prepare("c1", layers)
    with pytest.raises(SnapshotError):
        sn.prepare("c2", [tmp_path / "missing"])
    assert sn.list() == ["c1"]
    [v] = sn.view("v", layers)
    assert v.options == (f"lowerdir={layers[1]}:{layers[0]}",)
    sn.remove("c1")
    sn.remove("c1")
    assert sn.list() == [] and len(os.listdir(sn.trash)) == 1
    assert sn.purge_trash() == 1 and os.listdir(sn.trash) == []


def test_pod_manifest_plan() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "hostUsers": False, "volumes": [{"name": "d", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/srv"}}],
        "containers": [{"name": "a", "image": "busybox", "command": ["sh"],
                        "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
                        "volumeMounts": [{"name": "d", "mountPath": "/d"}, {"name": "h", "mountPath": "/h", "readOnly": True}],
                        "securityContext": {"allowPrivilegeEscalation": False}}]}}
    plan = podspec.plan(pod, "/logs", "/vols")
    assert plan.sandbox.cgroup_parent.startswith("kubepods/burstable/pod") and not plan.sandbox.host_users
    assert plan.sandbox.labels[podspec.OWNER_LABEL] == podspec.CLI_OWNER
    [c] = plan.containers
    assert (c.resources.cpu_shares, c.resources.cpu_quota, c.resources.memory_limit_in_bytes) == (256, 50000, 64 << 20)
    assert c.mounts[1] == cri.Mount("/h", "/srv", readonly=True) and c.security.no_new_privs
    assert list(plan.empty_dirs) == ["d"]
    with pytest.raises(podspec.PodSpecError, match=r"spec.containers\[0\].resources.limits.cpu"):
        podspec.plan({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "i", "resources": {"limits": {"cpu": "lots"}}}]}}, "/l", "/v")
    assert podspec.qos_class([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]) == "Guaranteed"
    assert podspec.qos_class([{}]) == "BestEffort"


def test_scratch_root_on_tmpfs_and_released_when_empty(tmp_path: Path) -> None:
    if linux.mount_fstype("/dev/shm") != "tmpfs" or linux.mount_fstype(tmp_path) == "tmpfs":
        pytest.skip("needs a disk-backed tmp_path and a tmpfs /dev/shm")
    root = tmp_path / "rt"
    scratch = snapshots.scratch_root(root)
    assert scratch.parent == Path("/dev/shm") and scratch == snapshots.scratch_root(root)  # found again
    try:
        layer = tmp_path / "l1"
        layer.mkdir()
        sn = Snapshotter(scratch / "snapshots")
        [m] = sn.prepare("c1", [layer])
        assert "volatile" not in m.options  # nothing to sync on a tmpfs
        (scratch / "oci" / "c1").mkdir(parents=True)
        (scratch / "oci" / "c1" / "state.json").write_text("{}")
        snapshots.release_scratch(scratch, root)  # a live snapshot (its upper empty) and a container: kept
        assert (scratch / "oci" / "c1" / "state.json").exists() and (scratch / "snapshots" / "c1" / "fs").is_dir()
        shutil.rmtree(scratch / "oci" / "c1")
        (scratch / "oci" / ".runc").mkdir()
        snapshots.release_scratch(scratch, root)
        assert (scratch / "snapshots" / "c1" / "fs").is_dir()
        sn.remove("c1")
        sn.purge_trash()
        snapshots.release_scratch(scratch, root)
        assert not scratch.exists()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert snapshots.scratch_root(Path("/dev/shm") / "x") == Path("/dev/shm") / "x"  # a root on a tmpfs is its own


def test_snapshot_directories_are_emptied_and_reused(tmp_path: Path) -> None:
    layer = tmp_path / "l1"
    layer.mkdir()
    sn = Snapshotter(tmp_path / "snaps", keep=1)
    sn.prepare("c1", [layer])
    fs, ino = sn.upper("c1"), sn.upper("c1").stat().st_ino
    (fs / "etc").mkdir()
    (fs / "etc" / "written").write_text("x")
    (tmp_path / "snaps" / "c1" / "work" / "work").mkdir()
    os.chmod(fs, 0o700)
    sn.prepare("c2", [layer])
    inodes = {ino, sn.upper("c2").stat().st_ino}
    sn.remove("c1")
    sn.remove("c2")
    assert sn.purge_trash() == 2 and sn.list() == [] and len(os.listdir(sn.free)) == 1   # one kept, one deleted
    [m] = sn.prepare("c3", [layer])
    assert f"upperdir={sn.upper('c3')}" in m.options
    assert os.listdir(sn.upper("c3")) == [] and os.listdir(tmp_path / "snaps" / "c3" / "work") == []
    assert sn.upper("c3").stat().st_mode & 0o777 == 0o777 & ~process_umask()
    assert sn.list() == ["c3"] and os.listdir(sn.free) == [] and sn.upper("c3").stat().st_ino in inodes
    with pytest.raises(SnapshotError):
        sn.prepare("c3", [layer])
    sn.remove("c3")
    sn.close()
    assert sorted(os.listdir(tmp_path / "snaps")) == [".trash"] and os.listdir(sn.trash) == []


def test_snapshots_recycled_from_several_threads_keep_their_directories(tmp_path: Path) -> None:
    """Two removals emptying the trash at once once left a free snapshot without fs/ (its mount failed)."""
    import threading
    layer = tmp_path / "l1"
    layer.mkdir()
    sn = Snapshotter(tmp_path / "snaps")
    for round_ in range(5):
        keys = [f"c{round_}-{i}" for i in range(8)]
        for k in keys:
            sn.prepare(k, [layer])
            for j in range(20):
                (sn.upper(k) / f"f{j}").write_text("x")
        for k in keys:
            sn.remove(k)
        threads = [threading.Thread(target=sn.purge_trash) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in os.listdir(sn.free):
            assert sorted(os.listdir(sn.free / name)) == ["fs", "work"]
            assert os.listdir(sn.free / name / "fs") == []


def test_removed_snapshots_wait_in_the_trash_before_they_are_emptied(tmp_path: Path) -> None:
    layer = tmp_path / "l1"
    layer.mkdir()
    sn = Snapshotter(tmp_path / "snaps")
    sn.prepare("c1", [layer])
    sn.remove("c1")
    assert sn.purge_trash(older_than=300) == 0 and len(os.listdir(sn.trash)) == 1
    old = sn.trash / os.listdir(sn.trash)[0]
    os.rename(old, sn.trash / ("1000." + old.name.split(".", 1)[1]))      # removed long ago
    (sn.trash / "legacy-name").mkdir()                                     # (no time: purged)
    assert sn.purge_trash(older_than=300) == 2 and os.listdir(sn.trash) == []
    assert len(os.listdir(sn.free)) == 1
