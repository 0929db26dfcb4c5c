"""Overlayfs snapshots, containerd style: ``prepare(key, parents) -> [Mount]``; no mount syscall here.

A snapshot is a directory ``<root>/<key>/`` holding ``fs/`` (the upper dir) and ``work/``. ``prepare``
returns the overlay mount that the container's init performs inside its own mount namespace (so no
host mount is left to unmount). The Runtime keeps snapshots on the node's disk, as containerd and CRI-O
do: what a container writes into its rootfs is ephemeral storage, not memory charged to its memory
limit. Upper dirs are disposable, so on a disk mounts are ``volatile`` (no sync of the whole upper file
system at unmount, 150+ ms when the disk is busy); on a tmpfs root nothing needs syncing.
``scratch_root`` picks where the runtime keeps what lives only as long as the host is up (bundles, OCI
state): a tmpfs, as runc keeps its state in /run. ``remove`` only renames the snapshot into ``<root>/.trash`` so the caller can delete it
off the hot path with ``purge_trash``, which empties it and keeps its directories in ``<root>/.free`` for the
next ``prepare`` (at most :data:`KEEP`): on a journal-less ext4 each new inode costs ~0.5-1 ms once
containers have come and gone (see dirpool), and a snapshot is three. The runtime empties only what waited
:data:`PURGE_AFTER` (deleting is what makes those allocations dear). Parents are image layer dirs, lowest first (the order
``ImageStore`` gives); overlay wants them highest first in ``lowerdir``. A read-only view (``view``) has
no upper dir.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kubelet.runtime import linux
from kubelet.runtime.dirpool import process_umask

logger = logging.getLogger(__name__)
KEEP = 64                      # emptied snapshot directories kept for reuse
# seconds a removed snapshot waits in the trash before its files are deleted: each deletion makes a
# journal-less ext4's allocations in that block group step over the freed inode for the next 1-6 minutes,
# overlay's own (its work dir and mount points, made at every container start) too; a burst of pod starts
# right after a burst of removals paid ~5 ms more per container for it
PURGE_AFTER = 300.0


class SnapshotError(Exception):
    """A snapshot cannot be prepared (missing parent, existing key)."""


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount, as containerd's ``mount.Mount``: what mount(2) gets."""

    type: str
    source: str
    options: tuple[str, ...]

    def to_oci(self, destination: str) -> dict[str, object]:
        return {"destination": destination, "type": self.type, "source": self.source,
                "options": list(self.options)}


TMPFS = "tmpfs"
SHM = "/dev/shm"


def scratch_root(runtime_root: str | Path) -> Path:
    """Where a runtime keeps what is disposable or lives only as long as the host is up (snapshots, container
    bundles and records, the OCI runtime's state, as runc keeps its own in /run): ``runtime_root`` itself if that is on a tmpfs, else a
    directory of its own (named after the root, so a restarted runtime finds it) on ``/dev/shm``, else (no
    tmpfs there either) ``runtime_root`` on its disk."""
    probe = Path(runtime_root)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if linux.mount_fstype(probe) == TMPFS or linux.mount_fstype(SHM) != TMPFS:
        return Path(runtime_root)
    tag = hashlib.sha256(str(Path(runtime_root).resolve()).encode()).hexdigest()[:12]
    return Path(SHM) / f"kubelite-runtime-{tag}"


def release_scratch(scratch: str | Path, runtime_root: str | Path) -> None:
    """Remove a scratch root of its own (not ``runtime_root``) once it holds no snapshot and no container
    state: only ``.``-named bookkeeping dirs (the trash, runc's and crun's roots) that are empty, and the
    snapshots' free pool (emptied directories). A live snapshot's upper dir may be empty: it is never touched here."""
    scratch = Path(scratch)
    if scratch == Path(runtime_root):
        return
    for part in ("snapshots", "oci", "containers"):
        d = scratch / part
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        if any(not n.startswith(".") for n in names):
            return
        if part == "snapshots" and ".free" in names:
            shutil.rmtree(d / ".free", ignore_errors=True)
            names.remove(".free")
        try:
            for n in names:
                os.rmdir(d / n)
            os.rmdir(d)
        except OSError:
            return
    try:
        os.rmdir(scratch)
    except OSError:
        pass


class Snapshotter:
    """Overlay snapshots under ``root``."""

    def __init__(self, root: str | Path, keep: int = KEEP) -> None:
        self.root = Path(root)
        self.trash = self.root / ".trash"
        self.free = self.root / ".free"
        self.keep = keep
        self.root.mkdir(parents=True, exist_ok=True)
        self.trash.mkdir(exist_ok=True)
        self.volatile = linux.mount_fstype(self.root) != TMPFS  # a tmpfs has nothing to sync at unmount
        self._dir_mode = 0o777 & ~process_umask()                      # what mkdir gives a fresh upper dir
        self._purging = threading.Lock()   # one emptier at a time: two on one entry once left a dir without fs/

    def _mounts(self, parents: list[Path], upper: Path | None, work: Path | None) -> list[Mount]:
        if not parents:
            raise SnapshotError("a snapshot needs at least one parent layer")
        for p in parents:
            if not Path(p).is_dir():
                raise SnapshotError(f"parent layer {p} does not exist")
        lower = ":".join(str(p) for p in reversed(parents))
        if upper is None:
            if len(parents) == 1:
                return [Mount("bind", str(parents[0]), ("rbind", "ro"))]
            return [Mount("overlay", "overlay", (f"lowerdir={lower}",))]
        opts = (f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}")
        return [Mount("overlay", "overlay", opts + (("volatile",) if self.volatile else ()))]

    def prepare(self, key: str, parents: list[Path]) -> list[Mount]:
        """Make an active (writable) snapshot ``key`` on ``parents`` (lowest first); returns its mounts."""
        d = self.root / key
        if os.path.lexists(d):
            raise SnapshotError(f"snapshot {key} already exists")
        if self._take(d):
            return self._mounts(parents, d / "fs", d / "work")
        try:
            try:
                d.mkdir()
            except FileNotFoundError:  # another runtime process on this root just closed it (empty)
                self.trash.mkdir(parents=True, exist_ok=True)
                d.mkdir()
        except FileExistsError:
            raise SnapshotError(f"snapshot {key} already exists") from None
        try:
            (d / "fs").mkdir()
            (d / "work").mkdir()
            return self._mounts(parents, d / "fs", d / "work")
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise

    def view(self, key: str, parents: list[Path]) -> list[Mount]:
        """A read-only view of ``parents`` (nothing on disk)."""
        return self._mounts(parents, None, None)

    def mounts(self, key: str, parents: list[Path]) -> list[Mount]:
        """The mounts of an existing active snapshot."""
        d = self.root / key
        if not d.is_dir():
            raise SnapshotError(f"snapshot {key} does not exist")
        return self._mounts(parents, d / "fs", d / "work")

    def upper(self, key: str) -> Path:
        return self.root / key / "fs"

    def usage(self, key: str) -> int:
        """Bytes used by the upper dir (the writable layer)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.upper(key)):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
                except OSError:
                    pass
        return total

    def remove(self, key: str) -> None:
        """Forget ``key`` at once (rename into the trash); idempotent. ``purge_trash`` deletes the bytes."""
        d = self.root / key
        try:
            os.rename(d, self.trash / f"{int(time.time())}.{key}.{uuid.uuid4().hex[:8]}")
        except FileNotFoundError:
            pass

    def purge_trash(self, older_than: float = 0.0) -> int:
        """Empty what ``remove`` left in the trash (only what was removed ``older_than`` seconds ago or
        earlier), keeping up to ``keep`` snapshot directories in the free pool, deleting the rest (blocking:
        run off the event loop); returns the entries handled."""
        n = 0
        now = time.time()
        with self._purging:
            try:
                entries = list(os.scandir(self.trash))
            except FileNotFoundError:
                return 0
            for e in entries:
                if older_than and now - _removed_at(e.name) < older_than:
                    continue
                if not self._recycle(e.path):
                    shutil.rmtree(e.path, ignore_errors=True)
                n += 1
        return n

    def _take(self, d: Path) -> bool:
        """A free snapshot directory (empty ``fs/`` and ``work/``) renamed to ``d``; False when there is none."""
        try:
            names = os.listdir(self.free)
        except FileNotFoundError:
            return False
        for name in names:
            try:
                os.rename(self.free / name, d)
            except FileNotFoundError:          # taken meanwhile
                continue
            except OSError:
                return False
            if os.path.isdir(d / "fs") and os.path.isdir(d / "work"):
                return True
            shutil.rmtree(d, ignore_errors=True)   # (not one of ours: made afresh below)
            return False
        return False

    def _recycle(self, path: str) -> bool:
        """Empty the snapshot at ``path`` (its upper dir back to what ``prepare`` makes) into the free pool."""
        fs, work = os.path.join(path, "fs"), os.path.join(path, "work")
        try:
            if len(os.listdir(self.free) if self.free.is_dir() else ()) >= self.keep or \
                    sorted(os.listdir(path)) != ["fs", "work"]:
                return False
            for sub in (fs, work):
                with os.scandir(sub) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            shutil.rmtree(e.path)
                        else:
                            os.unlink(e.path)
            st = os.lstat(fs)
            if (st.st_uid, st.st_gid) != (0, 0):
                os.lchown(fs, 0, 0)            # (a user-namespaced pod's upper belonged to its range)
            os.chmod(fs, self._dir_mode)
            for name in os.listxattr(fs, follow_symlinks=False):
                if name.startswith("trusted.overlay."):
                    os.removexattr(fs, name, follow_symlinks=False)
            self.free.mkdir(exist_ok=True)
            os.rename(path, self.free / uuid.uuid4().hex)
            return True
        except OSError as e:
            logger.debug("snapshot %s not recycled: %s", path, e)
            return False

    def list(self) -> list[str]:
        return sorted(e.name for e in os.scandir(self.root) if e.is_dir() and e.name not in (".trash", ".free"))

    def close(self) -> None:
        """Empty the trash and the free pool (blocking: run off the event loop)."""
        self.keep = 0
        self.purge_trash()
        shutil.rmtree(self.free, ignore_errors=True)


def _removed_at(trash_name: str) -> float:
    """When ``remove`` put a trash entry there (0 for a name without the time: purge it)."""
    try:
        return float(trash_name.split(".", 1)[0])
    except ValueError:
        return 0.0
