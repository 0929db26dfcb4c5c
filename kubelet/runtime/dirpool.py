"""Recycled state directories: a removed sandbox's directory is kept for the next sandbox.

Why: on a journal-less ext4 (this host's root filesystem) every new inode makes the allocator step over
the block group's recently deleted inodes, ~0.5-4 ms per file once pods have come and gone there; a
sandbox makes and deletes some 10 files and directories under the runtime root (containers' bundles,
records and OCI state live on the tmpfs scratch root). Renaming a directory out of ``sandboxes/`` into
``sandboxes.free/`` and back makes no inode and deletes none.

``give`` renames first (atomic: the sandbox is gone from listings at once), then deletes the records
that made it one (``meta.json``), so a crash in between leaves only a stale record in the pool, which
``take`` deletes again (a record's inode is kept as its ``.spare``, see ``state.write_json``). A full pool, or any error, falls back to ``rmtree``. ``purge`` empties it
(the runtime's exit, ``kubelite down``). Only plain directories are given: their mounts are gone first.
Blocking file I/O: call from a worker thread.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from typing import Sequence

KEEP = 64


class DirPool:
    def __init__(self, path: str, keep: int = KEEP, records: Sequence[str] = ("meta.json",)) -> None:
        self.path = path
        self.keep = keep
        self.records = tuple(records)

    def _entries(self) -> list[str]:
        try:
            return [e.name for e in os.scandir(self.path)]
        except FileNotFoundError:
            return []

    def take(self, target: str) -> bool:
        """Move a free directory to ``target`` (which must not exist); False when the pool is empty."""
        for name in self._entries():
            src = os.path.join(self.path, name)
            try:
                os.rename(src, target)
            except FileNotFoundError:          # taken meanwhile (another thread or runtime process)
                continue
            except OSError:
                return False
            self._drop_records(target)
            return True
        return False

    def give(self, d: str) -> None:
        """Keep directory ``d`` (no mounts left in it) for a later :meth:`take`, or remove it."""
        if len(self._entries()) < self.keep:
            os.makedirs(self.path, exist_ok=True)
            dst = os.path.join(self.path, uuid.uuid4().hex)
            try:
                os.rename(d, dst)
            except FileNotFoundError:
                return
            except OSError:
                pass
            else:
                self._drop_records(dst)
                return
        shutil.rmtree(d, ignore_errors=True)

    def _drop_records(self, d: str) -> None:
        """The records go (the directory is no sandbox any more), their inodes stay as the next records'
        spares (``state.write_json(recycle=True)``)."""
        for name in self.records:
            path = os.path.join(d, name)
            with contextlib.suppress(FileNotFoundError):
                if os.path.exists(f"{path}.spare"):
                    os.unlink(path)
                else:
                    os.rename(path, f"{path}.spare")

    def purge(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def process_umask() -> int:
    """The process' umask, read without changing it (os.umask would, for every thread at once)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
