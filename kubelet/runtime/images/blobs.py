"""Content-addressed blobs under ``blobs/sha256/<hex>``: written to a temp file, verified, renamed.

A blob is only ever visible under its name once its bytes hash to it, so a corrupted or interrupted
download never leaves a half-stored blob behind. Blocking I/O: call from a thread in async code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable

from kubelet.runtime.images.errors import DigestMismatch
from kubelet.runtime.images.reference import DIGEST_RE

CHUNK = 1 << 20


def check_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise DigestMismatch(f"unsupported or malformed digest {digest!r} (only sha256 is supported)")
    return digest


class BlobStore:
    """The ``blobs/`` part of an OCI layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "blobs" / "sha256"
        self.tmp = root / "tmp"

    def path(self, digest: str) -> Path:
        return self.dir / check_digest(digest).split(":", 1)[1]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def temp_file(self, suffix: str = "") -> tuple[int, Path]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-", suffix=suffix)
        return fd, Path(name)

    def commit(self, tmp_path: Path, digest: str, size: int | None = None) -> Path:
        """Verify ``tmp_path`` hashes to ``digest`` (and has ``size``) and move it into place.

        Raises:
            DigestMismatch: the temp file is removed, nothing is stored.
        """
        check_digest(digest)
        try:
            h = hashlib.sha256()
            n = 0
            with open(tmp_path, "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    n += len(chunk)
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise DigestMismatch(f"blob {digest} failed verification: content hashes to {got}")
            if size is not None and size >= 0 and n != size:
                raise DigestMismatch(f"blob {digest} failed verification: {n} bytes, expected {size}")
            return self.commit_verified(tmp_path, digest)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def commit_verified(self, tmp_path: Path, digest: str) -> Path:
        """Move an already verified temp file into place (fsync'd)."""
        dest = self.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, dest)
        return dest

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (verified against ``digest`` when given); returns its digest."""
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest is not None and got != check_digest(digest):
            raise DigestMismatch(f"blob {digest} failed verification: content hashes to {got}")
        if self.has(got):
            return got
        fd, tmp = self.temp_file()
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.commit_verified(tmp, got)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return got

    def put_stream(self, src: BinaryIO | Iterable[bytes], digest: str | None = None,
                   size: int | None = None) -> tuple[str, int]:
        """Copy a stream into the store, hashing on the way; verified against ``digest`` when given."""
        fd, tmp = self.temp_file()
        h = hashlib.sha256()
        n = 0
        try:
            with os.fdopen(fd, "wb") as f:
                chunks = iter(lambda: src.read(CHUNK), b"") if hasattr(src, "read") else src
                for chunk in chunks:  # type: ignore[union-attr]
                    h.update(chunk)
                    f.write(chunk)
                    n += len(chunk)
            got = "sha256:" + h.hexdigest()
            if digest is not None and got != check_digest(digest):
                raise DigestMismatch(f"blob {digest} failed verification: content hashes to {got}")
            if size is not None and size >= 0 and n != size:
                raise DigestMismatch(f"blob {got} failed verification: {n} bytes, expected {size}")
            if self.has(got):
                tmp.unlink()
            else:
                self.commit_verified(tmp, got)
            return got, n
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def all(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return ["sha256:" + p.name for p in self.dir.iterdir() if len(p.name) == 64]

    def remove(self, digest: str) -> int:
        p = self.path(digest)
        try:
            size = p.stat().st_size
            p.unlink()
            return size
        except FileNotFoundError:
            return 0
