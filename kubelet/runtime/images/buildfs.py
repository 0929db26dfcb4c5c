"""Reading the file system of the image being built: parent directory entries for a layer tar that
keep the lower layers' metadata, and ``--chown`` names resolved through the image's passwd/group."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

from kubelet.runtime.images.errors import BuildError
from kubelet.runtime.images.layers import add_dir_entry, find_in_layers


def add_parents(tf: tarfile.TarFile, layers: list[Path], path: str, include_self: bool = False) -> None:
    """Directory entries for ``path``'s parents, keeping the metadata lower layers give them."""
    parts = [p for p in path.strip("/").split("/") if p]
    upto = parts if include_self else parts[:-1]
    for i in range(1, len(upto) + 1):
        rel = "/".join(upto[:i])
        lower = find_in_layers(layers, rel)
        if lower is not None and lower.is_dir() and not lower.is_symlink():
            s = os.lstat(lower)
            add_dir_entry(tf, rel, stat.S_IMODE(s.st_mode), int(s.st_mtime))
        else:
            add_dir_entry(tf, rel, 0o755, 0)


def chown_ids(layers: list[Path], spec: str | None) -> tuple[int, int]:
    """``--chown=user[:group]`` → (uid, gid), names looked up in the image's /etc/passwd and /etc/group."""
    if not spec:
        return (0, 0)
    user, _, group = spec.partition(":")

    def lookup(name: str, file: str, field_: int) -> int:
        if name.isdigit():
            return int(name)
        path = find_in_layers(layers, file)
        for line in (path.read_text().splitlines() if path is not None and path.is_file() else []):
            parts = line.split(":")
            if parts[0] == name and len(parts) > field_:
                return int(parts[field_])
        raise BuildError(f"--chown: unknown {'user' if file.endswith('passwd') else 'group'} {name!r}")
    uid = lookup(user, "etc/passwd", 2)
    gid = lookup(group, "etc/group", 2) if group else (lookup(user, "etc/passwd", 3) if not user.isdigit() else uid)
    return uid, gid
