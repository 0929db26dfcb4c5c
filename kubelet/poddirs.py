"""The pods' own directories on the node's disk, recycled: ``<root-dir>/pods/<uid>/`` and the log directories.

A pod's directory holds its volumes (``volumes/``, see volumes.py) and its containers' termination-message
files (``containers/<name>/<attempt>-<n>``, bind-mounted at ``terminationMessagePath``); its log directory
(``logs/pods/<ns>_<name>_<uid>/``) holds ``<container>/<attempt>.log``. On a journal-less ext4 every new
inode makes the allocator step over the block group's recently deleted inodes (~0.5-1 ms per file once pods
have come and gone; see kubelet.runtime.dirpool), and these are seven per pod. So :meth:`PodDirs.remove`
empties a removed pod's directory (its volumes deleted), renames a few of its container directories and
files ``.spare-*`` and keeps it in ``.free/`` (at most :data:`KEEP`); :meth:`PodDirs.make` takes one for a
new pod, and :meth:`PodDirs.file` makes its first files from the spares (emptied again). A node that starts
and stops pods without volumes then makes and deletes no inode for these. A pod's logs go with the pod, as
Kubernetes' container GC removes a pod's log directory once the pod is gone.

Blocking file I/O: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from kubelet.runtime.dirpool import DirPool, process_umask

_UMASK = process_umask()

KEEP = 64                   # emptied directories kept for new pods
SPARE = ".spare-"
SPARES_KEPT = 2             # files kept per container directory, container directories per pod


class PodDirs:
    """Per-pod directories ``<base>/<name>/`` whose container directories are in ``<name>/<containers>/``."""

    def __init__(self, base: Path, containers: str = "") -> None:
        self.base = base
        self.containers = containers

    def path(self, name: str) -> Path:
        return self.base / name

    def _pool(self) -> DirPool:
        return DirPool(str(self.base / ".free"), keep=KEEP, records=())

    def make(self, name: str) -> Path:
        """The pod's directory: as it is, a recycled one, or a new one."""
        d = self.path(name)
        if not d.is_dir():
            d.parent.mkdir(parents=True, exist_ok=True)
            if not self._pool().take(str(d)):
                d.mkdir(exist_ok=True)
        return d

    def file(self, name: str, container: str, filename: str, mode: int | None = None) -> Path:
        """An empty file ``<name>/<containers>/<container>/<filename>`` (root's; ``mode`` if given): a spare's
        inode when one is left, as is the container directory."""
        d = self.make(name) / self.containers / container
        if not d.is_dir():
            spare = _spare(d.parent)
            try:
                if spare is None:
                    raise FileNotFoundError(d)
                os.rename(spare, d)
            except OSError:
                d.mkdir(parents=True, exist_ok=True)
        path = d / filename
        reused = False
        if not path.exists() and (spare := _spare(d)) is not None:
            with contextlib.suppress(OSError):
                os.rename(spare, path)
                reused = True
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            if reused:                          # (a file that was there is left as it is)
                os.ftruncate(fd, 0)
                st = os.fstat(fd)
                if (st.st_uid, st.st_gid) != (0, 0):
                    os.fchown(fd, 0, 0)
                if mode is None:
                    os.fchmod(fd, 0o666 & ~_UMASK)
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return path

    def remove(self, name: str) -> None:
        """Remove the pod's directory, keeping its inodes for new pods."""
        d = self.path(name)
        if not d.is_dir():
            return
        try:
            _to_spares(d, self.containers)
        except OSError:
            shutil.rmtree(d, ignore_errors=True)
            return
        self._pool().give(str(d))

    def named_for(self, suffix: str) -> list[str]:
        """The pods' directory names ending in ``suffix`` (a log directory by its pod's uid)."""
        try:
            return [e.name for e in os.scandir(self.base) if e.name.endswith(suffix) and not e.name.startswith(".")]
        except FileNotFoundError:
            return []


def pod_dirs(root: Path) -> PodDirs:
    """``<root-dir>/pods/<uid>/``, termination-message files in ``containers/``."""
    return PodDirs(root / "pods", "containers")


def pod_dir(root: Path, uid: str) -> Path:
    return pod_dirs(root).path(uid)


def _spare(d: Path) -> Path | None:
    try:
        with os.scandir(d) as it:
            return next((Path(e.path) for e in it if e.name.startswith(SPARE)), None)
    except FileNotFoundError:
        return None


def _to_spares(d: Path, containers_at: str) -> None:
    """Everything of ``d`` deleted but a few container directories and files, renamed as spares."""
    containers = d / containers_at
    if containers_at:
        for e in os.scandir(d):
            if e.name != containers_at or not e.is_dir(follow_symlinks=False):
                _delete(e)
        if not containers.is_dir():
            return
    kept = 0
    for c in os.scandir(containers):
        if not c.is_dir(follow_symlinks=False) or kept >= SPARES_KEPT:
            _delete(c)
            continue
        files = 0
        for f in os.scandir(c.path):
            if f.is_file(follow_symlinks=False) and files < SPARES_KEPT:
                if not f.name.startswith(SPARE):
                    os.rename(f.path, os.path.join(c.path, SPARE + uuid.uuid4().hex[:12]))
                files += 1
            else:
                _delete(f)
        if not c.name.startswith(SPARE):
            os.rename(c.path, containers / (SPARE + uuid.uuid4().hex[:12]))
        kept += 1


def _delete(e: os.DirEntry[str]) -> None:
    if e.is_dir(follow_symlinks=False):
        shutil.rmtree(e.path)
    else:
        os.unlink(e.path)
