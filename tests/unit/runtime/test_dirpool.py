"""Recycled state directories: give/take keep the tree but never the record that made it a sandbox/container."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelet.runtime.dirpool import DirPool

pytestmark = pytest.mark.unit


def _state_dir(p: Path) -> Path:
    (p / "bundle" / "rootfs").mkdir(parents=True)
    (p / "bundle" / "config.json").write_text("{}")
    (p / "meta.json").write_text('{"id": "x"}')
    return p


def test_a_given_directory_comes_back_without_its_record(tmp_path: Path) -> None:
    pool = DirPool(str(tmp_path / "containers.free"))
    (tmp_path / "containers").mkdir()
    old = _state_dir(tmp_path / "containers" / "a")
    ino = (old / "bundle").stat().st_ino
    pool.give(str(old))
    assert not old.exists() and len(list((tmp_path / "containers.free").iterdir())) == 1
    new = tmp_path / "containers" / "b"
    assert pool.take(str(new))
    assert (new / "bundle").stat().st_ino == ino and (new / "bundle" / "rootfs").is_dir()
    assert not (new / "meta.json").exists()
    assert not pool.take(str(tmp_path / "containers" / "c"))     # empty again


def test_a_full_pool_removes_and_purge_empties(tmp_path: Path) -> None:
    pool = DirPool(str(tmp_path / "free"), keep=1)
    a, b = _state_dir(tmp_path / "a"), _state_dir(tmp_path / "b")
    pool.give(str(a))
    pool.give(str(b))
    assert not a.exists() and not b.exists() and len(list((tmp_path / "free").iterdir())) == 1
    pool.purge()
    assert not (tmp_path / "free").exists()
    pool.give(str(tmp_path / "gone"))                              # already gone: nothing happens


def test_a_stale_record_left_by_a_crash_is_dropped_on_take(tmp_path: Path) -> None:
    pool = DirPool(str(tmp_path / "free"))
    _state_dir(tmp_path / "free" / "crashed")                      # renamed, record not yet deleted
    assert pool.take(str(tmp_path / "new"))
    assert not (tmp_path / "new" / "meta.json").exists() and (tmp_path / "new" / "bundle").is_dir()


def test_records_rewritten_and_recycled_make_no_new_inode(tmp_path: Path) -> None:
    from kubelet.runtime.ociruntime.state import read_json, write_json
    d = tmp_path / "sandboxes" / "a"
    d.mkdir(parents=True)
    rec = str(d / "meta.json")
    write_json(rec, {"n": 1}, recycle=True)
    write_json(rec, {"n": 2}, recycle=True)          # the first record's inode becomes the spare
    inodes = {(d / "meta.json").stat().st_ino, (d / "meta.json.spare").stat().st_ino}
    write_json(rec, {"n": 3}, recycle=True)
    assert read_json(rec) == {"n": 3} and not (d / "meta.json.tmp").exists()
    assert {(d / "meta.json").stat().st_ino, (d / "meta.json.spare").stat().st_ino} == inodes
    pool = DirPool(str(tmp_path / "free"))
    pool.give(str(d))
    assert pool.take(str(tmp_path / "sandboxes" / "b"))
    new = tmp_path / "sandboxes" / "b"
    assert not (new / "meta.json").exists()
    write_json(str(new / "meta.json"), {"n": 4}, recycle=True)
    assert read_json(str(new / "meta.json")) == {"n": 4} and (new / "meta.json").stat().st_ino in inodes


def test_a_spare_that_is_still_the_record_is_not_truncated(tmp_path: Path) -> None:
    """A crash between keeping the old record as the spare and the rename: spare and record are one file."""
    import os
    from kubelet.runtime.ociruntime.state import read_json, write_json
    rec = str(tmp_path / "meta.json")
    write_json(rec, {"n": 1}, recycle=True)
    os.link(rec, rec + ".spare")
    write_json(rec, {"n": 2}, recycle=True)
    assert read_json(rec) == {"n": 2} and read_json(rec + ".spare") == {"n": 1}
