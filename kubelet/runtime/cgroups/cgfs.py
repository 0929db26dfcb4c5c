"""Low-level cgroupfs file access shared by the v1 and v2 drivers: read/write control files with
errors that name the file, mkdir/rmdir of cgroup directories (and the drivers' common ``create``),
and parsing of flat-keyed files.

Blocking I/O: callers on an event loop run these in a thread.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path
from typing import Callable, Protocol

from .model import CgroupBusyError, CgroupError, Resources, clean_path


def write(path: Path, value: str | int) -> None:
    """Write one value to a control file (one write(2), as the kernel expects)."""
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)   # TRUNC: harmless on cgroupfs, needed by a fake tree
    except OSError as e:
        raise CgroupError(f"open {path}: {e.strerror}") from e
    try:
        os.write(fd, data)
    except OSError as e:
        raise CgroupError(f"write {value!r} to {path}: {e.strerror}") from e
    finally:
        os.close(fd)


def read(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except OSError as e:
        raise CgroupError(f"read {path}: {e.strerror}") from e


def read_int(path: Path, default: int = 0) -> int:
    """An integer file; ``max`` → 0 (unlimited); a missing file → ``default``."""
    try:
        text = read(path).strip()
    except CgroupError:
        return default
    if text in ("", "max"):
        return 0
    return int(text.split()[0])


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed file (``memory.stat``, ``cpu.stat``, ``memory.events``); missing → {}."""
    try:
        text = read(path)
    except CgroupError:
        return {}
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def read_pids(path: Path) -> list[int]:
    """The pids in a ``cgroup.procs`` file; a vanished cgroup → []."""
    try:
        text = read(path)
    except CgroupError:
        return []
    return [int(x) for x in text.split()]


def sigkill(pids: list[int]) -> None:
    """SIGKILL each of ``pids``; one that is gone already is skipped."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_empty(path: str, pids: Callable[[], list[int]], deadline: float) -> None:
    """Wait until ``pids()`` (the processes of cgroup ``path``) is empty, or raise CgroupBusyError at ``deadline``."""
    while left := pids():
        if time.monotonic() >= deadline:
            raise CgroupBusyError(f"cgroup {path}: processes {left} survived SIGKILL")
        time.sleep(0.002)


def mkdir(path: Path) -> bool:
    """Create one cgroup directory; True when it was new.

    A parent that vanished meanwhile (another node pruning a shared ancestor such as ``kubelite``)
    raises ``FileNotFoundError`` so the caller can redo its walk from the top.
    """
    try:
        os.mkdir(path, 0o755)
        return True
    except (FileExistsError, FileNotFoundError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        return False
    except OSError as e:
        raise CgroupError(f"mkdir {path}: {e.strerror}") from e


def prune_empty(dirs: list[Path]) -> None:
    """rmdir each of ``dirs`` (deepest first) that is an empty cgroup; stop at the first in use."""
    for d in dirs:
        try:
            os.rmdir(d)
        except FileNotFoundError:
            continue
        except OSError:
            return


def subdirs_bottom_up(path: Path) -> list[Path]:
    """``path`` and every cgroup below it, deepest first (the order rmdir needs)."""
    out: list[Path] = []
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        out.append(Path(dirpath))
        del dirnames
    return out


def rmdir_tree(path: Path, deadline: float, *, plain_files: bool = False) -> None:
    """rmdir ``path`` and its descendants bottom-up; retry EBUSY (dying tasks) until ``deadline``.

    A missing directory is fine (idempotent). Raises :class:`CgroupBusyError` when processes stay.
    ``plain_files``: the tree is a fake cgroupfs (tests), so its control files are unlinked first.
    """
    if not path.exists():
        return
    for d in subdirs_bottom_up(path):
        if plain_files:
            for f in d.iterdir():
                if f.is_file():
                    f.unlink()
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.002)
                    continue
                if e.errno == errno.EBUSY:
                    raise CgroupBusyError(f"rmdir {d}: still in use") from e
                raise CgroupError(f"rmdir {d}: {e.strerror}") from e


class _Driver(Protocol):
    root: str

    def exists(self, path: str, /) -> bool: ...

    def update(self, path: str, resources: Resources, /) -> None: ...

    def destroy(self, path: str, *, kill: bool = ..., timeout: float = ...) -> None: ...


def create(driver: _Driver, path: str, resources: Resources | None, mkdirs: Callable[[str], None]) -> None:
    """A driver's ``create``: ``mkdirs(full path under the root)``, walked again (up to 3 times) if an
    ancestor is pruned meanwhile, then ``resources`` applied; a failed update of a cgroup this call
    made removes it again."""
    full = clean_path(f"{driver.root}/{clean_path(path)}")
    existed = driver.exists(path)
    for attempt in range(3):
        try:
            mkdirs(full)
            break
        except FileNotFoundError as e:       # an ancestor was pruned meanwhile: walk again
            if attempt == 2:
                raise CgroupError(f"create {path}: {e}") from e
    if resources is not None:
        try:
            driver.update(path, resources)
        except CgroupError:
            if not existed:          # a failed create leaves nothing behind
                driver.destroy(path, kill=False, timeout=1.0)
            raise
