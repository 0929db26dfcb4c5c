"""Write layer tars: reproducible (sorted, fixed owner, optional fixed mtime, gzip without a timestamp).

Used by the base image, the builder (COPY/ADD trees, RUN's overlay upper dir: overlay whiteouts
turned back into OCI ``.wh.`` entries), and export. Also reads a layer directory back as a list of
changes (what ``history --files`` shows). Blocking I/O.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from kubelet.runtime.images import oci
from kubelet.runtime.images.blobs import BlobStore
from kubelet.runtime.images.unpack import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX


@dataclass(frozen=True, slots=True)
class LayerBlob:
    digest: str
    diff_id: str
    size: int
    media_type: str

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class _HashingWriter:
    def __init__(self, raw: object) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.count += len(data)
        return self.raw.write(data)  # type: ignore[attr-defined, no-any-return]

    def flush(self) -> None:
        self.raw.flush()  # type: ignore[attr-defined]


def write_layer(blobs: BlobStore, fill: Callable[[tarfile.TarFile], None], *, compress: bool = True,
                level: int = 6) -> LayerBlob:
    """Make a layer blob in the store from what ``fill`` adds to the tar; returns its digests."""
    fd, tmp = blobs.temp_file(".tar")
    try:
        with os.fdopen(fd, "wb") as raw:
            outer = _HashingWriter(raw)
            if compress:
                gz = gzip.GzipFile(fileobj=outer, mode="wb", compresslevel=level, mtime=0)  # type: ignore[arg-type]
                inner = _HashingWriter(gz)
            else:
                gz, inner = None, outer
            with tarfile.open(fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
                fill(tf)
            if gz is not None:
                gz.close()
        digest = "sha256:" + outer.hash.hexdigest()
        diff_id = "sha256:" + inner.hash.hexdigest()
        size = outer.count
        if blobs.has(digest):
            tmp.unlink()
        else:
            blobs.commit_verified(tmp, digest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return LayerBlob(digest, diff_id, size, oci.OCI_LAYER_GZIP if compress else oci.OCI_LAYER)


def _info(name: str, st: os.stat_result, *, mtime: int | None, chown: tuple[int, int] | None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = chown if chown is not None else (st.st_uid, st.st_gid)
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime) if mtime is None else mtime
    return ti


def add_path(tf: tarfile.TarFile, src: Path, arcname: str, *, mtime: int | None = None,
             chown: tuple[int, int] | None = None, overlay: bool = False,
             exclude: Callable[[Path], bool] | None = None,
             hardlinks: dict[tuple[int, int], str] | None = None, recursive: bool = True) -> None:
    """Add ``src`` (file, symlink, dir recursively, sorted) as ``arcname``.

    With ``overlay``, a 0/0 char device becomes ``.wh.<name>`` and an opaque dir gets ``.wh..wh..opq``.
    """
    hardlinks = {} if hardlinks is None else hardlinks
    st = os.lstat(src)
    arcname = arcname.lstrip("/") or "."
    if overlay and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        head, _, base = arcname.rpartition("/")
        ti = _info((head + "/" if head else "") + WHITEOUT_PREFIX + base, st, mtime=mtime, chown=(0, 0))
        ti.type, ti.mode = tarfile.REGTYPE, 0o644
        tf.addfile(ti)
        return
    ti = _info(arcname, st, mtime=mtime, chown=chown)
    try:
        for key in os.listxattr(src, follow_symlinks=False):
            if key.startswith(("security.capability", "user.")):
                ti.pax_headers["SCHILY.xattr." + key] = os.getxattr(src, key, follow_symlinks=False).decode(
                    "utf-8", "surrogateescape")
    except OSError:
        pass
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
        tf.addfile(ti)
        if overlay:
            try:
                opaque = os.getxattr(src, OPAQUE_XATTR) == b"y"
            except OSError:
                opaque = False
            if opaque:
                wh = _info(f"{arcname}/{OPAQUE_MARKER}" if arcname != "." else OPAQUE_MARKER, st, mtime=mtime,
                           chown=(0, 0))
                wh.type, wh.mode = tarfile.REGTYPE, 0o644
                tf.addfile(wh)
        for child in (sorted(os.listdir(src)) if recursive else ()):
            cpath = src / child
            if exclude is not None and exclude(cpath):
                continue
            add_path(tf, cpath, f"{arcname}/{child}" if arcname != "." else child, mtime=mtime, chown=chown,
                     overlay=overlay, exclude=exclude, hardlinks=hardlinks)
    elif stat.S_ISLNK(st.st_mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(src)
        tf.addfile(ti)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in hardlinks:
            ti.type, ti.linkname = tarfile.LNKTYPE, hardlinks[key]
            tf.addfile(ti)
            return
        hardlinks[key] = arcname
        ti.size = st.st_size
        with open(src, "rb") as f:
            tf.addfile(ti, f)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tf.addfile(ti)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
        tf.addfile(ti)


def add_dir_entry(tf: tarfile.TarFile, name: str, mode: int = 0o755, mtime: int = 0) -> None:
    ti = tarfile.TarInfo(name.lstrip("/"))
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, mtime
    tf.addfile(ti)


def add_bytes(tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
    import io
    ti = tarfile.TarInfo(name.lstrip("/"))
    ti.size, ti.mode, ti.mtime = len(data), mode, mtime
    tf.addfile(ti, io.BytesIO(data))


def add_symlink(tf: tarfile.TarFile, name: str, target: str, mtime: int = 0) -> None:
    ti = tarfile.TarInfo(name.lstrip("/"))
    ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, target, 0o777, mtime
    tf.addfile(ti)


# ------------------------------------------------------------------------------ reading layer dirs
def changes(layers: list[Path]) -> Iterator[list[tuple[str, str]]]:
    """Per layer (lowest first), the (kind, path) it brings: A added, C changed, D deleted.

    Deletions come from overlay whiteouts (char 0/0) and opaque directories (whatever lower layers had
    under them is deleted).
    """
    present: set[str] = set()
    for layer in layers:
        out: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(layer):
            rel_dir = "/" + os.path.relpath(dirpath, layer) if dirpath != str(layer) else "/"
            rel_dir = rel_dir.replace("/.", "/") if rel_dir == "/." else rel_dir
            if rel_dir != "/":
                try:
                    opaque = os.getxattr(dirpath, OPAQUE_XATTR) == b"y"
                except OSError:
                    opaque = False
                if opaque:
                    for p in sorted(q for q in present if q.startswith(rel_dir + "/")):
                        out.append(("D", p))
                        present.discard(p)
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                path = (rel_dir.rstrip("/") + "/" + name)
                st = os.lstat(full)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    gone = [p for p in present if p == path or p.startswith(path + "/")]
                    if gone:
                        out.append(("D", path))
                    for p in gone:
                        present.discard(p)
                    continue
                if stat.S_ISDIR(st.st_mode) and path in present:
                    continue  # a directory only carried along for its children
                out.append(("C" if path in present else "A", path))
                present.add(path)
        yield sorted(out, key=lambda c: c[1])


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def find_in_layers(layers: list[Path], rel: str) -> Path | None:
    """The topmost layer's copy of ``rel`` in the union of ``layers`` (lowest first), or None when
    it is absent or deleted (a whiteout or an opaque directory above hides it). Symlinks are not followed."""
    parts = [p for p in rel.strip("/").split("/") if p and p != "."]
    for layer in reversed(layers):
        cur = layer
        for comp in parts:
            nxt = cur / comp
            try:
                st = os.lstat(nxt)
            except FileNotFoundError:
                if cur != layer and _opaque(cur):
                    return None
                break
            if _is_whiteout(st):
                return None
            cur = nxt
        else:
            return cur
    return None


def merged_tree(layers: list[Path], rel: str) -> list[tuple[str, Path]]:
    """Everything visible under ``rel`` in the union of ``layers`` (lowest first): (path relative to
    ``rel``, the file in its topmost layer), parents before children. Whiteouts and opaque dirs apply."""
    rel = rel.strip("/")
    candidates: set[str] = set()
    for layer in layers:
        base = layer / rel if rel else layer
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            sub = os.path.relpath(dirpath, base)
            for name in dirnames + filenames:
                candidates.add(name if sub == "." else f"{sub}/{name}")
    out = []
    for cand in sorted(candidates):
        found = find_in_layers(layers, f"{rel}/{cand}" if rel else cand)
        if found is not None:
            out.append((cand, found))
    return out
