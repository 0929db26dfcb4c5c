"""Pod directories: a removed pod's directory and files come back, emptied, for the next pods."""

import os
from pathlib import Path

import pytest

from kubelet import poddirs
from kubelet.poddirs import PodDirs, pod_dirs

pytestmark = pytest.mark.unit


def test_a_removed_pods_directory_and_message_file_are_reused_empty(tmp_path: Path) -> None:
    dirs = pod_dirs(tmp_path)
    f = dirs.file("uid-a", "app", "0-1", 0o666)
    assert f == tmp_path / "pods" / "uid-a" / "containers" / "app" / "0-1" and f.read_bytes() == b""
    assert f.stat().st_mode & 0o777 == 0o666
    f.write_text("goodbye")
    vol = tmp_path / "pods" / "uid-a" / "volumes" / "kubernetes.io~empty-dir" / "data"
    vol.mkdir(parents=True)
    (vol / "user-data").write_text("x")
    inodes = {(tmp_path / "pods" / "uid-a").stat().st_ino, f.parent.stat().st_ino, f.stat().st_ino}
    dirs.remove("uid-a")
    assert not (tmp_path / "pods" / "uid-a").exists()
    g = dirs.file("uid-b", "web", "0-2", 0o666)
    assert g.parent == tmp_path / "pods" / "uid-b" / "containers" / "web" and g.read_bytes() == b""
    assert {(tmp_path / "pods" / "uid-b").stat().st_ino, g.parent.stat().st_ino, g.stat().st_ino} == inodes
    assert os.listdir(tmp_path / "pods" / "uid-b") == ["containers"]           # the volumes went
    assert os.listdir(g.parent) == [g.name] and sorted(os.listdir(tmp_path / "pods")) == [".free", "uid-b"]
    h = dirs.file("uid-b", "web", "1-3", 0o666)                                 # a restart: a new file
    assert h != g and g.exists() and h.read_bytes() == b""


def test_log_directories_go_with_their_pod_and_an_existing_log_is_kept(tmp_path: Path) -> None:
    logs = PodDirs(tmp_path / "logs")
    log = logs.file("ns_p_uid-1", "c", "0.log")
    assert log == tmp_path / "logs" / "ns_p_uid-1" / "c" / "0.log"
    log.write_text("line\n")
    assert logs.file("ns_p_uid-1", "c", "0.log").read_text() == "line\n"     # never truncated when there
    (log.parent / "0.log.1").write_text("rotated\n")
    (log.parent / "0.log.2").write_text("rotated\n")
    assert logs.named_for("_uid-1") == ["ns_p_uid-1"] and logs.named_for("_uid-2") == []
    inodes = {p.stat().st_ino for p in log.parent.iterdir()}
    logs.remove("ns_p_uid-1")
    assert logs.named_for("_uid-1") == [] and sorted(os.listdir(tmp_path / "logs")) == [".free"]
    new = logs.file("ns_q_uid-2", "d", "0.log")
    assert new.read_bytes() == b"" and len(os.listdir(new.parent)) == 2          # two of three files kept
    assert {p.stat().st_ino for p in new.parent.iterdir()} < inodes
    assert new.stat().st_mode & 0o777 == 0o666 & ~poddirs._UMASK


def test_a_pool_that_is_full_deletes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poddirs, "KEEP", 1)
    dirs = pod_dirs(tmp_path)
    for uid in ("a", "b", "c"):
        dirs.file(uid, "c", "0-0")
    for uid in ("a", "b", "c"):
        dirs.remove(uid)
    assert os.listdir(tmp_path / "pods") == [".free"] and len(os.listdir(tmp_path / "pods" / ".free")) == 1
    dirs.remove("never-made")                                                   # nothing to do
    assert dirs.make("d") == tmp_path / "pods" / "d" and dirs.make("e").is_dir()
