"""Resolve a container's image to its config and layer dirs, from the node's image store.

``kubelet.runtime.images.ImageStore.get(ref)`` gives ``.id``, ``.config`` (OCI image config) and
``.layers`` (lowest first, ``.path`` = unpacked dir). Besides, a ``rootfs:/abs/dir`` reference uses a
plain directory as the only layer (an unpacked rootfs for demos and tests, nothing pulled).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelet import cri


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    id: str
    ref: str
    config: dict[str, Any] = field(default_factory=dict)   # the OCI image config's "config" object
    layer_paths: list[Path] = field(default_factory=list)  # lowest first


def resolve_image(store: Any, ref: str) -> ResolvedImage:
    """Raises ``cri.CreateContainerError`` when the image is not present."""
    if ref.startswith("rootfs:"):
        path = ref[len("rootfs:"):]
        if not os.path.isabs(path) or not os.path.isdir(path):
            raise cri.CreateContainerError(f"image {ref!r}: no such directory")
        return ResolvedImage("sha256:" + hashlib.sha256(path.encode()).hexdigest(), ref, {}, [Path(path)])
    img = store.get(ref) if store is not None else None
    if img is None:
        raise cri.CreateContainerError(f"image {ref!r} is not present on this node")
    config = img.config.get("config", img.config) if isinstance(img.config, dict) else {}
    repo_digests = getattr(img, "repo_digests", ())
    return ResolvedImage(img.id, repo_digests[0] if repo_digests else ref, dict(config or {}),
                         [Path(layer.path) for layer in img.layers])
