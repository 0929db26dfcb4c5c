"""The pods' own directories on the node's disk (``<root-dir>/pods/<uid>/``), recycled.

A pod's directory holds its volumes (``volumes/``, see volumes.py) and its containers' termination-message
files (``containers/<name>/<attempt>-<n>``, bind-mounted at ``terminationMessagePath``). On a journal-less
ext4 every new inode makes the allocator step over the block group's recently deleted inodes (~0.5-1 ms per
file once pods have come and gone; see kubelet.runtime.dirpool), and a pod's directory is four of them. So
:func:`remove` empties a removed pod's directory of its volumes, renames its container directories and
message files ``.spare-*``, and keeps it in ``pods/.free/`` (at most :data:`KEEP`); :func:`make` takes one
for a new pod, and :func:`termination_file` makes the first message files from the spares (emptied again).
A node that starts and stops pods without volumes then makes and deletes no inode for these.

Blocking file I/O: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path

from kubelet.runtime.dirpool import DirPool

KEEP = 64                   # emptied pod directories kept for new pods
SPARE = ".spare-"
SPARES_KEPT = 2             # message files kept per container directory, container directories per pod


def pod_dir(root: Path, uid: str) -> Path:
    return root / "pods" / uid


def _pool(root: Path) -> DirPool:
    return DirPool(str(root / "pods" / ".free"), keep=KEEP, records=())


def make(root: Path, uid: str) -> Path:
    """The pod's directory: as it is, a recycled one, or a new one."""
    d = pod_dir(root, uid)
    if not d.is_dir():
        d.parent.mkdir(parents=True, exist_ok=True)
        if not _pool(root).take(str(d)):
            d.mkdir(exist_ok=True)
    return d


def _spare(d: Path) -> Path | None:
    try:
        with os.scandir(d) as it:
            return next((Path(e.path) for e in it if e.name.startswith(SPARE)), None)
    except FileNotFoundError:
        return None


def termination_file(root: Path, uid: str, container: str, attempt: int) -> Path:
    """A new, empty, world-writable file for one container instance's termination message."""
    d = make(root, uid) / "containers" / container
    if not d.is_dir():
        spare = _spare(d.parent)
        try:
            if spare is None:
                raise FileNotFoundError
            os.rename(spare, d)
        except OSError:
            d.mkdir(parents=True, exist_ok=True)
    path = d / f"{attempt}-{time.time_ns() % 10**9}"
    spare = _spare(d)
    if spare is not None:
        with contextlib.suppress(OSError):
            os.rename(spare, path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        os.ftruncate(fd, 0)
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (0, 0):
            os.fchown(fd, 0, 0)
        os.fchmod(fd, 0o666)
    finally:
        os.close(fd)
    return path


def remove(root: Path, uid: str) -> None:
    """Remove the pod's directory (volumes, termination-message files), keeping its inodes for new pods;
    hostPath data is never under it."""
    d = pod_dir(root, uid)
    if not d.is_dir():
        return
    try:
        _to_spares(d)
    except OSError:
        shutil.rmtree(d, ignore_errors=True)
        return
    _pool(root).give(str(d))


def _to_spares(d: Path) -> None:
    """Everything of ``d`` deleted but a few container directories and message files, renamed as spares."""
    for e in os.scandir(d):
        if e.name == "containers" and e.is_dir(follow_symlinks=False):
            continue
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path)
        else:
            os.unlink(e.path)
    containers = d / "containers"
    if not containers.is_dir():
        return
    kept = 0
    for c in os.scandir(containers):
        if not c.is_dir(follow_symlinks=False) or kept >= SPARES_KEPT:
            shutil.rmtree(c.path) if c.is_dir(follow_symlinks=False) else os.unlink(c.path)
            continue
        files = 0
        for f in os.scandir(c.path):
            if f.is_file(follow_symlinks=False) and files < SPARES_KEPT:
                if not f.name.startswith(SPARE):
                    os.rename(f.path, os.path.join(c.path, SPARE + uuid.uuid4().hex[:12]))
                files += 1
            elif f.is_dir(follow_symlinks=False):
                shutil.rmtree(f.path)
            else:
                os.unlink(f.path)
        if not c.name.startswith(SPARE):
            os.rename(c.path, containers / (SPARE + uuid.uuid4().hex[:12]))
        kept += 1
