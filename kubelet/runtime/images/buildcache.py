"""The build step cache, as Docker's classic builder keeps it: step key → the layer (or none) it made.

A key chains the previous step's key with the instruction and a digest of its content, so a rebuild with
nothing changed hits every step. The cache is one JSON file in the store root, rewritten under the
store's index lock; ``prune`` drops the steps whose layer blob is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelet.runtime.images.store import ImageStore

CACHE_FILE = "build-cache.json"     # in the store root


def step_key(prev: str, *parts: str) -> str:
    return "sha256:" + hashlib.sha256("\n".join((prev, *parts)).encode()).hexdigest()


class StepCache:
    """Look up and record build steps of one store (``no_cache``: every lookup misses)."""

    def __init__(self, store: ImageStore, no_cache: bool = False) -> None:
        self.store = store
        self.no_cache = no_cache
        self.file = store.root / CACHE_FILE

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The step recorded under ``key``, its layer unpacked again if needed; None if unusable."""
        if self.no_cache:
            return None
        hit = self._read().get(key)
        if hit is None:
            return None
        layer = hit.get("layer")
        if layer is not None:
            if not self.store.blobs.has(layer["digest"]):
                return None
            self.store.ensure_layer(layer, hit["diff_id"])
        return hit

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self.store.locked():
            cache = self._read()
            cache[key] = value
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, self.file)
