"""A build's context directory: which files COPY/ADD may read (``.dockerignore``), their content digest
(part of the layer cache key), and local archives that ADD extracts. Blocking I/O.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

from kubelet.runtime.images.dockerfile import ignored, parse_ignore
from kubelet.runtime.images.errors import BuildError
from kubelet.runtime.images.unpack import resolve_in_root


class BuildContext:
    def __init__(self, root: Path) -> None:
        self.context = root.resolve()
        ignore = self.context / ".dockerignore"
        self.ignore = parse_ignore(ignore.read_text()) if ignore.is_file() else []

    def sources(self, patterns: list[str], line: int) -> list[Path]:
        out: list[Path] = []
        for pat in patterns:
            if "://" in pat:
                raise BuildError(f"Dockerfile line {line}: remote URLs are not fetched by kubelite build: {pat}")
            matches = sorted(self.context.glob(pat.lstrip("/"))) if any(c in pat for c in "*?[") else \
                [self.context / pat.lstrip("/")]
            matches = [m for m in matches if not self.ignored(m)]
            if not matches:
                raise BuildError(f"Dockerfile line {line}: COPY failed: {pat!r} not found in the build context")
            for m in matches:
                rel = os.path.normpath(os.path.relpath(m, self.context))
                if rel == ".." or rel.startswith("../"):
                    raise BuildError(f"Dockerfile line {line}: {pat!r} is outside the build context")
                # symlinks on the way (and a symlinked source) resolve inside the context, never out of it
                real = resolve_in_root(self.context, rel.split("/")) if rel != "." else self.context
                if not (real.exists() or real.is_symlink()):
                    raise BuildError(f"Dockerfile line {line}: COPY failed: {pat!r} not found in the build context")
                out.append(real)
        return out

    def ignored(self, path: Path) -> bool:
        if not self.ignore:
            return False
        rel = os.path.relpath(path, self.context)
        return rel not in (".", "Dockerfile", ".dockerignore") and ignored(self.ignore, rel)

    def content_digest(self, sources: list[Path]) -> str:
        h = hashlib.sha256()
        for src in sources:
            paths = [src] if not src.is_dir() or src.is_symlink() else sorted(
                [src, *src.rglob("*")], key=lambda p: str(p))
            for p in paths:
                if self.ignored(p) and p != src:
                    continue
                s = os.lstat(p)
                rel = os.path.relpath(p, self.context)
                h.update(f"{rel}\0{stat.S_IMODE(s.st_mode)}\0{stat.S_IFMT(s.st_mode)}\0".encode())
                if stat.S_ISREG(s.st_mode):
                    with open(p, "rb") as f:
                        while chunk := f.read(1 << 20):
                            h.update(chunk)
                elif stat.S_ISLNK(s.st_mode):
                    h.update(os.readlink(p).encode())
        return h.hexdigest()


def is_archive(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(512)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def add_archive(tf: tarfile.TarFile, src: Path, dest: str, chown: tuple[int, int]) -> None:
    """ADD of a local tar: its entries extracted under ``dest`` (owners as in the archive, as Docker does)."""
    with src.open("rb") as f:
        head = f.read(6)
    opener: Any = gzip.open if head[:2] == b"\x1f\x8b" else bz2.open if head[:3] == b"BZh" else \
        lzma.open if head[:6] == b"\xfd7zXZ\x00" else open
    with opener(src, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as inner:
        for m in inner:
            name = "/".join(p for p in m.name.split("/") if p not in ("", "."))
            if ".." in name.split("/"):
                raise BuildError(f"ADD {src.name}: entry {m.name!r} escapes the destination")
            m.name = f"{dest.strip('/')}/{name}".strip("/") if name else dest.strip("/")
            if m.islnk():
                m.linkname = f"{dest.strip('/')}/{m.linkname.lstrip('./')}".strip("/")
            tf.addfile(m, inner.extractfile(m) if m.isreg() else None)
