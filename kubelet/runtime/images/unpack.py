"""Unpack one layer tar (gzip or plain) into a directory usable as an overlay lowerdir, safely.

- OCI whiteouts become overlay's: ``.wh.<name>`` → a 0/0 character device ``<name>``;
  ``.wh..wh..opq`` → ``trusted.overlay.opaque=y`` on its directory.
- No entry may leave the layer directory: names with ``..`` are refused, symlinks met on the way to
  an entry (also absolute ones) are resolved inside the layer directory, hard links must point inside.
- Ownership, modes (setuid included), mtimes, xattrs, device nodes and fifos are kept (as root).
- The uncompressed stream is hashed on the way: the result is the layer's diff_id, checked against
  the expected one; on any error the half-made directory is removed.
Blocking I/O: call from a thread in async code.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from kubelet.runtime.images.errors import DigestMismatch, UnsafeArchive, UnsupportedMediaType

logger = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_MAX_LINKS = 40
_IS_ROOT = os.geteuid() == 0


class HashingReader:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def open_decompressed(path: Path) -> tuple[BinaryIO, subprocess.Popen[bytes] | None]:
    """Open a layer blob, decompressing gzip (and zstd through the ``zstd`` tool) by its magic bytes."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb"), None  # type: ignore[return-value]
    f = open(path, "rb")
    if magic == b"\x28\xb5\x2f\xfd":
        zstd = shutil.which("zstd")
        if zstd is None:
            f.close()
            raise UnsupportedMediaType("zstd-compressed layer and no 'zstd' tool installed")
        proc = subprocess.Popen([zstd, "-dcq"], stdin=f, stdout=subprocess.PIPE)
        f.close()
        assert proc.stdout is not None
        return proc.stdout, proc  # type: ignore[return-value]
    return f, None


def _clean_name(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchive(f"tar entry {name!r} escapes the layer (a '..' path)")
    return parts


def resolve_in_root(root: Path, parts: list[str]) -> Path:
    """Join ``parts`` under ``root`` following symlinks as if ``root`` were ``/`` (never leaving it)."""
    stack: list[str] = []
    todo = list(reversed(parts))
    links = 0
    while todo:
        comp = todo.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if stack:
                stack.pop()
            continue
        p = root.joinpath(*stack, comp)
        if p.is_symlink():
            links += 1
            if links > _MAX_LINKS:
                raise UnsafeArchive(f"too many levels of symbolic links under {'/'.join(parts)!r}")
            target = os.readlink(p)
            if target.startswith("/"):
                stack = []
            todo.extend(reversed(target.split("/")))
            continue
        stack.append(comp)
    return root.joinpath(*stack)


def _remove(path: Path) -> bool:
    """Remove whatever is at ``path``; returns True when something was there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    return True


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in member.pax_headers.items():
        if k.startswith("SCHILY.xattr."):
            out[k[len("SCHILY.xattr."):]] = v.encode("utf-8", "surrogateescape")
    return out


def _set_meta(path: Path, m: tarfile.TarInfo, *, is_link: bool = False, created_mode: int | None = None) -> None:
    """Owner, xattrs, mode and mtime of ``path`` from ``m``; ``created_mode``: the mode it already has."""
    chowned = False
    if _IS_ROOT and (m.uid, m.gid) != (0, 0):
        os.lchown(path, m.uid, m.gid)
        chowned = True
    for k, v in _xattrs(m).items():
        try:
            os.setxattr(path, k, v, follow_symlinks=False)
        except OSError as exc:
            logger.debug("xattr %s on %s not kept: %s", k, path, exc)
    if not is_link and (chowned or created_mode != m.mode & 0o7777):
        os.chmod(path, m.mode & 0o7777)
    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


_UMASK = _umask()


def _write_file(path: Path, src: BinaryIO, m: tarfile.TarInfo) -> None:
    """Create a regular file and set its metadata through the open descriptor, skipping the calls that
    would change nothing (each metadata write is a journal transaction: unpacking is bound by them)."""
    mode = m.mode & 0o7777
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o777)
    try:
        remaining = m.size
        while remaining > 0:
            chunk = src.read(min(remaining, 1 << 20))
            if not chunk:
                raise UnsafeArchive(f"tar entry {m.name!r} is truncated")
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            remaining -= len(chunk)
        chowned = False
        if _IS_ROOT and (m.uid, m.gid) != (0, 0):   # created as root:root (no setgid parents in a layer)
            os.fchown(fd, m.uid, m.gid)
            chowned = True
        for k, v in _xattrs(m).items():
            try:
                os.setxattr(fd, k, v)
            except OSError as exc:
                logger.debug("xattr %s on %s not kept: %s", k, path, exc)
        if chowned or mode != (mode & 0o777 & ~_UMASK):  # chown clears setuid; umask may have cut bits
            os.fchmod(fd, mode)
        os.utime(fd, (m.mtime, m.mtime))
    finally:
        os.close(fd)


def extract(stream: BinaryIO, dest: Path) -> int:
    """Apply the tar ``stream`` into ``dest`` (which exists); returns the bytes of file content written."""
    written = 0
    dirs: list[tuple[Path, tarfile.TarInfo]] = []
    resolved: dict[tuple[str, ...], Path] = {}    # parent parts -> real dir; cleared when links/dirs change

    def parent_of(parts: list[str]) -> Path:
        key = tuple(parts)
        p = resolved.get(key)
        if p is None:
            p = resolve_in_root(dest, parts)
            p.mkdir(parents=True, exist_ok=True)
            resolved[key] = p
        return p
    try:
        tf = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.ReadError as exc:
        raise UnsafeArchive(f"layer is not a tar archive: {exc}") from None
    with tf:
        try:
            for m in tf:
                parts = _clean_name(m.name)
                if not parts:  # the root itself: keep its metadata for the end
                    if m.isdir():
                        dirs.append((dest, m))
                    continue
                parent = parent_of(parts[:-1])
                base = parts[-1]
                if base.startswith(WHITEOUT_PREFIX):
                    if base == OPAQUE_MARKER:
                        os.setxattr(parent, OPAQUE_XATTR, b"y")
                    elif not base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                        target = parent / base[len(WHITEOUT_PREFIX):]
                        if _remove(target):
                            resolved.clear()
                        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                    continue
                path = parent / base
                if m.isdir():
                    try:
                        os.mkdir(path)
                    except FileExistsError:
                        if not stat.S_ISDIR(os.lstat(path).st_mode):
                            _remove(path)
                            resolved.clear()
                            os.mkdir(path)
                    dirs.append((path, m))
                    continue
                if _remove(path):
                    resolved.clear()
                if m.isreg():
                    src = tf.extractfile(m)
                    assert src is not None
                    _write_file(path, src, m)  # type: ignore[arg-type]
                    written += m.size
                elif m.issym():
                    os.symlink(m.linkname, path)
                    _set_meta(path, m, is_link=True)
                elif m.islnk():
                    lparts = _clean_name(m.linkname)
                    target = resolve_in_root(dest, lparts[:-1]) / lparts[-1] if lparts else dest
                    if not (target.exists() or target.is_symlink()):
                        raise UnsafeArchive(f"hard link {m.name!r} → {m.linkname!r}: target not in the layer")
                    os.link(target, path, follow_symlinks=False)
                elif m.ischr() or m.isblk():
                    kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                    os.mknod(path, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
                    _set_meta(path, m)
                elif m.isfifo():
                    os.mkfifo(path, m.mode & 0o7777)
                    _set_meta(path, m)
                else:
                    logger.debug("tar entry %s of type %r skipped", m.name, m.type)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, (tarfile.TarError, EOFError)):
                raise UnsafeArchive(f"layer tar is corrupt: {exc}") from None
            raise
    for path, m in sorted(dirs, key=lambda d: len(d[0].parts), reverse=True):
        _set_meta(path, m, created_mode=stat.S_IMODE(os.lstat(path).st_mode))
    return written


def unpack_layer(blob: Path, dest: Path, expected_diff_id: str | None = None) -> tuple[str, int]:
    """Unpack the layer ``blob`` into the new directory ``dest`` (atomically: temp dir + rename).

    Returns:
        (diff_id, bytes of file content).
    Raises:
        DigestMismatch: the uncompressed tar does not hash to ``expected_diff_id``.
        UnsafeArchive: a corrupt tar or an entry escaping the layer.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name[:16]}.tmp-"))
    os.chmod(tmp, 0o755)
    stream, proc = open_decompressed(blob)
    try:
        reader = HashingReader(stream)
        try:
            written = extract(reader, tmp)  # type: ignore[arg-type]
            reader.drain()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            if isinstance(exc, (EOFError, gzip.BadGzipFile)) or "gzip" in str(exc).lower():
                raise UnsafeArchive(f"layer {blob.name[:12]} is corrupt: {exc}") from None
            raise
        diff_id = reader.digest
        if expected_diff_id is not None and diff_id != expected_diff_id:
            raise DigestMismatch(f"layer diff_id mismatch: expected {expected_diff_id}, content is {diff_id}")
        try:
            os.rename(tmp, dest)
        except OSError:  # another unpack of the same layer won the race: keep theirs
            if not dest.is_dir():
                raise
            shutil.rmtree(tmp)
        return diff_id, written
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        stream.close()
        if proc is not None:
            proc.wait()
