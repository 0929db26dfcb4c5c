"""The OCI runtime's state directory: one dir per container with what the shim records.

``<root>/<id>/state.json`` (pid, its start time, bundle, cgroup, created/started ns), ``exit.json``
(exit code, reason, finish ns; written once, durably) and ``shim.sock`` while the shim lives. ``status``
derives the OCI status (creating | created | running | stopped) from those files and /proc.
"""

from __future__ import annotations

import json
import os
from typing import Any


START_FIFO = "start.fifo"
STARTED_PREFIX = "started."  # `start` renames the fifo to started.<ns> just before it releases the init
STARTED = "started"  # (a file holding the ns, from runtimes before the rename)


def started_at(cdir: str, st: dict[str, Any]) -> int:
    """When ``start`` ran (0 if it has not)."""
    if st.get("started"):
        return int(st["started"])
    try:
        with os.scandir(cdir) as it:
            for e in it:
                if e.name.startswith(STARTED_PREFIX):
                    return int(e.name[len(STARTED_PREFIX):])
                if e.name == STARTED:
                    with open(e.path) as f:
                        return int(f.read() or 0)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        pass
    return 0


def container_dir(root: str, cid: str) -> str:
    if not cid or "/" in cid or cid.startswith("."):
        raise ValueError(f"invalid container id {cid!r}")
    return os.path.join(root, cid)


def write_json(path: str, data: dict[str, Any], sync: bool = False, recycle: bool = False) -> None:
    """Atomically replace ``path`` (tmp + rename; with ``sync`` also fsync file and dir). ``recycle``: the
    record replaced is kept as ``<path>.spare`` and is the next write's tmp file, so rewriting a record
    makes and deletes no inode (each new one costs ~0.5-1 ms on a busy journal-less ext4; see dirpool)."""
    tmp = f"{path}.tmp"
    fd = _open_tmp(tmp, f"{path}.spare" if recycle else "")
    with open(fd, "w", closefd=True) as f:
        f.write(json.dumps(data))  # (one write: json.dump writes chunk by chunk)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    if recycle:
        try:
            os.link(path, f"{path}.spare")
        except OSError:                 # none yet, a spare already, or no hard links here: a new inode next time
            pass
    os.rename(tmp, path)
    if sync:
        fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _open_tmp(tmp: str, spare: str) -> int:
    """``tmp`` opened empty for writing: the ``spare`` file's inode when there is one."""
    if spare:
        try:
            os.rename(spare, tmp)
        except FileNotFoundError:
            pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    if spare and os.fstat(fd).st_nlink > 1:  # a crash between link and rename: the spare is the record itself
        os.close(fd)
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    os.ftruncate(fd, 0)
    return fd


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None


def proc_starttime(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): with the pid, a process' identity."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[19])


def alive(pid: int, starttime: int) -> bool:
    """The process ``pid`` exists, is not a zombie and is the one that started at ``starttime``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = data[data.rindex(")") + 2:].split()
    return fields[0] != "Z" and int(fields[19]) == starttime


def status(root: str, cid: str) -> dict[str, Any] | None:
    """OCI ``state`` of ``cid`` (plus ``exit`` when stopped), or None when there is no such container."""
    d = container_dir(root, cid)
    st = read_json(os.path.join(d, "state.json"))
    if st is None:
        return {"ociVersion": "1.0.2", "id": cid, "status": "creating", "pid": 0, "bundle": ""} \
            if os.path.isdir(d) else None
    ex = read_json(os.path.join(d, "exit.json"))
    started = started_at(d, st)
    if started:
        st["started"] = started
    if ex is not None:
        s = "stopped"
    elif not alive(st["pid"], st["starttime"]) and not alive(st["shim"], st.get("shim_starttime", -1)):
        s = "stopped"  # the shim died with it: nothing recorded, the kernel says it is gone
        ex = {"exit_code": 255, "reason": "Unknown", "finished": 0, "message": "shim lost"}
    else:
        s = "running" if started else "created"
    out = {"ociVersion": "1.0.2", "id": cid, "status": s, "pid": st["pid"] if s != "stopped" else 0,
           "bundle": st["bundle"], "annotations": {}, "_state": st}
    if ex is not None:
        out["_exit"] = ex
    return out


def read_oom_kills(oom_file: str) -> int:
    """The ``oom_kill`` count in a memory.oom_control (v1) or memory.events (v2) file; 0 when gone."""
    try:
        with open(oom_file) as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (FileNotFoundError, ValueError):
        pass
    return 0


def remove_container_dir(root: str, cid: str) -> None:
    """Remove ``<root>/<id>`` (flat: one scandir, unlinks, one rmdir; a tree falls back to rmtree)."""
    d = container_dir(root, cid)
    try:
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    raise IsADirectoryError(e.path)
                os.unlink(e.path)
        os.rmdir(d)
    except FileNotFoundError:
        pass
    except OSError:
        import shutil  # (not at the top: the fork server imports this module, and its size is paid per fork)
        shutil.rmtree(d, ignore_errors=True)


def list_ids(root: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(root) if e.is_dir())
    except FileNotFoundError:
        return []
