"""Layer unpacking: whiteouts become overlay's, nothing escapes the layer dir, metadata is kept."""

from __future__ import annotations

import hashlib
import gzip
import os
import stat
from pathlib import Path

import pytest

from kubelet.runtime.images.errors import DigestMismatch, UnsafeArchive
from kubelet.runtime.images.unpack import unpack_layer
from tests.unit.images.conftest import Entry, make_tar


def _blob(tmp_path: Path, entries: list[Entry], compress: bool = True) -> Path:
    p = tmp_path / "layer.blob"
    p.write_bytes(make_tar(entries, compress))
    return p


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    blob = _blob(tmp_path, [
        Entry("etc", "dir", mode=0o755), Entry("etc/.wh.passwd"), Entry("var/lib", "dir"),
        Entry("var/lib/.wh..wh..opq"), Entry("var/lib/new", data=b"n"), Entry(".wh..wh.plnk", "dir"),
    ])
    dest = tmp_path / "out"
    unpack_layer(blob, dest)
    st = os.lstat(dest / "etc/passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "var/lib", "trusted.overlay.opaque") == b"y"
    assert (dest / "var/lib/new").read_bytes() == b"n"
    assert not any(p.name.startswith(".wh.") for p in dest.rglob("*"))


def test_metadata_kept_and_diff_id_returned(tmp_path: Path) -> None:
    entries = [Entry("bin", "dir", mode=0o751, mtime=12345), Entry("bin/su", data=b"x", mode=0o4755, uid=0),
               Entry("home/u/f", data=b"hello", mode=0o600, uid=1000, gid=1001, mtime=777),
               Entry("bin/sh", "symlink", link="/bin/su"), Entry("bin/su2", "hardlink", link="bin/su"),
               Entry("dev/null", "chr", mode=0o666), Entry("run/fifo", "fifo", mode=0o600)]
    raw = make_tar(entries, compress=False)
    blob = tmp_path / "l"
    blob.write_bytes(gzip.compress(raw))
    diff_id, _ = unpack_layer(blob, tmp_path / "out", "sha256:" + hashlib.sha256(raw).hexdigest())
    out = tmp_path / "out"
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert stat.S_IMODE(os.stat(out / "bin/su").st_mode) == 0o4755
    st = os.stat(out / "home/u/f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), int(st.st_mtime)) == (1000, 1001, 0o600, 777)
    assert os.stat(out / "bin").st_mtime == 12345 and stat.S_IMODE(os.stat(out / "bin").st_mode) == 0o751
    assert os.readlink(out / "bin/sh") == "/bin/su"
    assert os.stat(out / "bin/su2").st_ino == os.stat(out / "bin/su").st_ino
    assert os.stat(out / "dev/null").st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(out / "run/fifo").st_mode)


def test_absolute_symlink_is_followed_inside_the_layer(tmp_path: Path) -> None:
    outside = tmp_path / "victim"
    outside.mkdir()
    blob = _blob(tmp_path, [Entry("etc", "symlink", link=str(outside)), Entry("etc/evil", data=b"x"),
                            Entry("up", "symlink", link="../../../../.."), Entry("up/evil2", data=b"y")])
    unpack_layer(blob, tmp_path / "out")
    assert list(outside.iterdir()) == []
    assert (tmp_path / "out" / outside.relative_to("/") / "evil").read_bytes() == b"x"
    assert (tmp_path / "out/evil2").read_bytes() == b"y"


@pytest.mark.parametrize("entries", [
    [Entry("../evil", data=b"x")],
    [Entry("a/../../evil", data=b"x")],
    [Entry("link", "hardlink", link="../../etc/passwd")],
    [Entry("link", "hardlink", link="nonexistent")],
])
def test_escapes_refused_and_nothing_left(tmp_path: Path, entries: list[Entry]) -> None:
    blob = _blob(tmp_path, entries)
    with pytest.raises(UnsafeArchive):
        unpack_layer(blob, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["layer.blob"]


def test_wrong_diff_id_refused_and_nothing_left(tmp_path: Path) -> None:
    blob = _blob(tmp_path, [Entry("f", data=b"x")])
    with pytest.raises(DigestMismatch, match="diff_id"):
        unpack_layer(blob, tmp_path / "out", "sha256:" + "0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer.blob"]


def test_corrupt_gzip_refused(tmp_path: Path) -> None:
    data = bytearray(make_tar([Entry("f", data=os.urandom(50000))]))
    data[len(data) // 2] ^= 0xFF
    blob = tmp_path / "layer.blob"
    blob.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchive, match="corrupt"):
        unpack_layer(blob, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    blob = _blob(tmp_path, [Entry("x", "dir"), Entry("x/f", data=b"1"), Entry("x", data=b"now a file"),
                            Entry("y", data=b"file"), Entry("y", "dir"), Entry("y/z", data=b"z")])
    unpack_layer(blob, tmp_path / "out")
    assert (tmp_path / "out/x").read_bytes() == b"now a file"
    assert (tmp_path / "out/y/z").read_bytes() == b"z"


def test_zstd_layer(tmp_path: Path) -> None:
    import subprocess
    raw = make_tar([Entry("z", data=b"zstd!")], compress=False)
    blob = tmp_path / "layer.blob"
    blob.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout)
    diff_id, _ = unpack_layer(blob, tmp_path / "out", "sha256:" + hashlib.sha256(raw).hexdigest())
    assert (tmp_path / "out/z").read_bytes() == b"zstd!"
