"""Housekeeping of the node's disk: dead containers, unused images and container log rotation.

As Kubernetes' ``kuberuntime_gc.go`` and ``images/image_gc_manager.go``: per pod and container name
the newest ``keep`` exited instances stay (the newest is the one ``logs --previous`` reads), older
ones are removed; when the image filesystem is above 85 % used, images no container uses are removed,
least recently seen first, until usage falls under 80 %. Logs of running containers are rotated
(10 MiB × 5).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Mapping

from kubelet.cri import ContainerState, CriError, ImageService, RuntimeService
from kubelet.logs import MAX_FILES, MAX_SIZE, rotate_if_needed
from kubelet.planner import RuntimePod

logger = logging.getLogger(__name__)
HIGH_THRESHOLD = 85
LOW_THRESHOLD = 80


def dead_containers(rp: RuntimePod, keep: int = 2) -> list[str]:
    """Ids of exited containers beyond the newest ``keep`` per container name (never a running one)."""
    doomed: list[str] = []
    seen: dict[str, int] = {}
    for c in rp.containers:                       # newest first
        if c.state == ContainerState.RUNNING:
            continue
        n = seen.get(c.metadata.name, 0)
        seen[c.metadata.name] = n + 1
        if n >= keep:
            doomed.append(c.id)
    return doomed


async def collect_containers(runtime: RuntimeService, pods: Mapping[str, RuntimePod], keep: int = 2) -> int:
    removed = 0
    for rp in pods.values():
        for cid in dead_containers(rp, keep):
            try:
                await runtime.remove_container(cid)
                removed += 1
            except CriError as exc:
                logger.warning("removing dead container %s: %s", cid, exc)
    return removed


class ImageGC:
    def __init__(self, images: ImageService, high: int = HIGH_THRESHOLD, low: int = LOW_THRESHOLD) -> None:
        self.images = images
        self.high = high
        self.low = low
        self.last_used: dict[str, float] = {}

    async def collect(self, pods: Mapping[str, RuntimePod]) -> list[str]:
        now = time.time()
        in_use = {c.image_id or c.image for rp in pods.values() for c in rp.containers}
        in_use |= {c.image for rp in pods.values() for c in rp.containers}
        for image_id in in_use:
            self.last_used[image_id] = now
        fs = await self.images.image_fs_info()
        if fs.capacity_bytes <= 0:
            return []
        used_pct = 100 * (fs.capacity_bytes - fs.available_bytes) / fs.capacity_bytes
        if used_pct < self.high:
            return []
        to_free = fs.capacity_bytes * (used_pct - self.low) / 100
        candidates = [i for i in await self.images.list_images()
                      if i.id not in in_use and not (set(i.repo_tags) & in_use)]
        candidates.sort(key=lambda i: self.last_used.get(i.id, 0.0))
        removed: list[str] = []
        freed = 0.0
        for img in candidates:
            if freed >= to_free:
                break
            try:
                await self.images.remove_image(img.id)
            except CriError as exc:
                logger.warning("image GC: removing %s: %s", img.id, exc)
                continue
            removed.append(img.id)
            freed += img.size
        logger.info("image GC: %.0f%% used, removed %d images (%d bytes)", used_pct, len(removed), int(freed))
        return removed


async def rotate_logs(pods: Mapping[str, RuntimePod], max_size: int = MAX_SIZE, max_files: int = MAX_FILES) -> int:
    paths = [Path(c.log_path) for rp in pods.values() for c in rp.running() if c.log_path]

    def run() -> int:
        return sum(1 for p in paths if rotate_if_needed(p, max_size, max_files))

    return await asyncio.to_thread(run) if paths else 0
