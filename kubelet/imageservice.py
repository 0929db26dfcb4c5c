"""A stand-in ImageService over the node's image store, for when ``kubelet.runtime.images`` offers none.

It serves what the store holds (status, list, remove, filesystem usage); ``pull_image`` only succeeds
for an image already present. The assembly (:mod:`kubelet.app`) prefers the images part's own
ImageService (``kubelet.runtime.images.service.ImageService``) when it exists.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from kubelet.cri import AuthConfig, FilesystemUsage, Image, ImagePullError, NotFoundError


def _image(stored: Any) -> Image:
    user = str(((stored.config or {}).get("config") or {}).get("User", "") or "")
    uid = int(user.split(":")[0]) if user.split(":")[0].isdigit() else None
    return Image(id=stored.id, repo_tags=tuple(getattr(stored, "tags", ()) or getattr(stored, "names", ())),
                 repo_digests=tuple(getattr(stored, "repo_digests", ())), size=int(getattr(stored, "size", 0)),
                 uid=uid, username="" if uid is not None else user.split(":")[0])


class StoreImageService:
    def __init__(self, store: Any, root: Path) -> None:
        self.store = store
        self.root = root

    async def pull_image(self, ref: str, auth: AuthConfig | None = None) -> str:
        stored = await asyncio.to_thread(self.store.get, ref)
        if stored is None:
            raise ImagePullError(f"image {ref!r} is not in the node's store and this build cannot pull")
        return str(stored.id)

    async def image_status(self, ref: str) -> Image | None:
        try:
            stored = await asyncio.to_thread(self.store.get, ref)
        except Exception:                                    # an unparsable reference: not present
            return None
        return _image(stored) if stored is not None else None

    async def list_images(self) -> list[Image]:
        return [_image(s) for s in await asyncio.to_thread(self.store.list)]

    async def remove_image(self, ref: str) -> None:
        try:
            await asyncio.to_thread(self.store.remove, ref)
        except Exception as exc:
            raise NotFoundError(str(exc)) from exc

    async def image_fs_info(self) -> FilesystemUsage:
        du = await asyncio.to_thread(shutil.disk_usage, self.root)
        used, _ = await asyncio.to_thread(self.store.usage) if hasattr(self.store, "usage") else (du.used, 0)
        return FilesystemUsage(str(self.root), int(used), 0, du.total, du.free)
