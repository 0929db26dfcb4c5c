"""Helpers to make layer tars in memory for the image tests."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelet.runtime.images.store import ImageStore


@dataclass
class Entry:
    name: str
    kind: str = "file"          # file | dir | symlink | hardlink | chr | fifo
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    link: str = ""
    mtime: int = 1000


def make_tar(entries: list[Entry], compress: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
            if e.kind == "file":
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                       "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[e.kind]
            ti.linkname = e.link
            if e.kind == "chr":
                ti.devmajor, ti.devminor = 1, 3
            tf.addfile(ti)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


@pytest.fixture(scope="session")
def base_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the busybox base image, built once per session (copy it with :func:`base_store`)."""
    from kubelet.runtime.images.base import ensure_base_images
    root = tmp_path_factory.mktemp("base") / "store"
    ensure_base_images(ImageStore(root))
    return root


def base_store(template: Path, dest: Path) -> ImageStore:
    shutil.copytree(template, dest, symlinks=True)
    return ImageStore(dest)
