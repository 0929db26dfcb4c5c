"""Garbage collection of the image store: what the index reaches, which layers overlay mounts use,
``prune`` (dangling images, then unreferenced blobs, layers and build-cache steps) and disk usage.

Blocking I/O: async callers run these in a thread.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kubelet.runtime.images import oci
from kubelet.runtime.images.buildcache import CACHE_FILE

if TYPE_CHECKING:
    from kubelet.runtime.images.store import ImageStore

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PruneReport:
    images: list[str] = field(default_factory=list)
    blobs: int = 0
    layers: int = 0
    bytes_freed: int = 0


def referenced(store: ImageStore) -> tuple[set[str], set[str]]:
    """(blob digests, layer diff_ids) that the index reaches."""
    blobs: set[str] = set()
    diff_ids: set[str] = set()
    for e in store.read_index().get("manifests", []):
        blobs.add(e["digest"])
        rd = (e.get("annotations") or {}).get(oci.ANNOTATION_REPO_DIGEST)
        if rd:
            blobs.add(rd)
        try:
            m = store.load_json(e["digest"])
        except FileNotFoundError:
            continue
        for child in m.get("manifests", []):  # an index kept in the layout
            blobs.add(child["digest"])
        if "config" in m:
            blobs.add(m["config"]["digest"])
            blobs.update(layer["digest"] for layer in m.get("layers", []))
            try:
                diff_ids.update(store.load_json(m["config"]["digest"]).get("rootfs", {}).get("diff_ids", []))
            except FileNotFoundError:
                pass
    return blobs, diff_ids


def prune(store: ImageStore, dangling_images: bool = True) -> PruneReport:
    """Remove nameless images (when asked), then every blob and layer no image references."""
    report = PruneReport()
    with store._flock("gc.lock", fcntl.LOCK_EX):
        if dangling_images:
            with store.locked():
                index = store.read_index()
                named = {e["digest"] for e in index["manifests"] if store._entry_name(e)}
                gone = [e for e in store._grouped_from(index) if e["digest"] not in named]
                for e in gone:
                    try:
                        report.images.append(store.load_json(e["digest"])["config"]["digest"])
                    except (FileNotFoundError, KeyError):
                        report.images.append(e["digest"])
                index["manifests"] = [e for e in index["manifests"] if e not in gone]
                store._write_index(index)
        with store.locked():
            blobs, diff_ids = referenced(store)
            for digest in store.blobs.all():
                if digest not in blobs:
                    report.bytes_freed += store.blobs.remove(digest)
                    report.blobs += 1
            busy = layers_in_use(store.layers_dir)
            for d in store.layers_dir.iterdir():
                if d.name in busy:
                    logger.info("layer %s is still mounted by a container: kept", d.name[:12])
                    continue
                if ("sha256:" + d.name) not in diff_ids:
                    report.bytes_freed += disk_usage(d)[0]
                    shutil.rmtree(d, ignore_errors=True)
                    report.layers += 1
            shutil.rmtree(store.blobs.tmp, ignore_errors=True)
            _prune_build_cache(store)
    return report


def _prune_build_cache(store: ImageStore) -> None:
    """Forget build-cache steps whose layer blob is gone (under the index lock)."""
    path = store.root / CACHE_FILE
    try:
        cache = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    kept = {k: v for k, v in cache.items() if v.get("layer") is None or store.blobs.has(v["layer"]["digest"])}
    if len(kept) != len(cache):
        store._atomic_write(path, json.dumps(kept).encode())


def layers_in_use(layers_dir: Path) -> set[str]:
    """Names of layer dirs that some overlay mount (in any mount namespace) uses as a lowerdir.

    Containers mount their rootfs in their own mount namespaces, so every namespace's
    ``mountinfo`` is read (once per namespace); prune must not pull a layer from under them.
    """
    prefix = str(layers_dir) + "/"
    seen_ns: set[str] = set()
    busy: set[str] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ns = os.readlink(f"/proc/{entry.name}/ns/mnt")
            if ns in seen_ns:
                continue
            seen_ns.add(ns)
            with open(f"/proc/{entry.name}/mountinfo") as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if " - overlay " not in line or prefix not in line:
                continue
            for opt in line.rsplit(" ", 1)[-1].split(","):
                if opt.startswith("lowerdir="):
                    for lower in opt[len("lowerdir="):].split(":"):
                        if lower.startswith(prefix):
                            busy.add(lower[len(prefix):].split("/", 1)[0])
    return busy


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes used on disk, inodes used) under ``path``, hard links counted once."""
    seen: set[tuple[int, int]] = set()
    used = inodes = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (dirpath, *(os.path.join(dirpath, n) for n in filenames + dirnames)):
            try:
                st = os.lstat(name)
            except FileNotFoundError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            used += st.st_blocks * 512
            inodes += 1
    return used, inodes
