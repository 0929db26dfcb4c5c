"""Pod directories: a removed pod's directory and message files come back, emptied, for the next pods."""

import os
from pathlib import Path

import pytest

from kubelet import poddirs

pytestmark = pytest.mark.unit


def test_a_removed_pods_directory_and_message_file_are_reused_empty(tmp_path: Path) -> None:
    f = poddirs.termination_file(tmp_path, "uid-a", "app", 0)
    assert f.parent == tmp_path / "pods" / "uid-a" / "containers" / "app" and f.read_bytes() == b""
    assert f.stat().st_mode & 0o777 == 0o666
    f.write_text("goodbye")
    vol = tmp_path / "pods" / "uid-a" / "volumes" / "kubernetes.io~empty-dir" / "data"
    vol.mkdir(parents=True)
    (vol / "user-data").write_text("x")
    inodes = {(tmp_path / "pods" / "uid-a").stat().st_ino, f.parent.stat().st_ino, f.stat().st_ino}
    poddirs.remove(tmp_path, "uid-a")
    assert not (tmp_path / "pods" / "uid-a").exists()
    g = poddirs.termination_file(tmp_path, "uid-b", "web", 0)
    assert g.parent == tmp_path / "pods" / "uid-b" / "containers" / "web" and g.read_bytes() == b""
    assert {(tmp_path / "pods" / "uid-b").stat().st_ino, g.parent.stat().st_ino, g.stat().st_ino} == inodes
    assert os.listdir(tmp_path / "pods" / "uid-b") == ["containers"]           # the volumes went
    assert os.listdir(g.parent) == [g.name] and sorted(os.listdir(tmp_path / "pods")) == [".free", "uid-b"]
    h = poddirs.termination_file(tmp_path, "uid-b", "web", 1)                   # a restart: a new file
    assert h != g and g.exists() and h.read_bytes() == b""


def test_a_pool_that_is_full_deletes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poddirs, "KEEP", 1)
    for uid in ("a", "b", "c"):
        poddirs.termination_file(tmp_path, uid, "c", 0)
    for uid in ("a", "b", "c"):
        poddirs.remove(tmp_path, uid)
    assert os.listdir(tmp_path / "pods") == [".free"] and len(os.listdir(tmp_path / "pods" / ".free")) == 1
    poddirs.remove(tmp_path, "never-made")                                       # nothing to do
    assert poddirs.make(tmp_path, "d") == tmp_path / "pods" / "d" and poddirs.make(tmp_path, "e").is_dir()
