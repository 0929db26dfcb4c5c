"""The kubelet's ImageService (``kubelet.cri.ImageService``) over the node's image store and registries.

- ``pull_image`` pulls (credentials: the CRI AuthConfig, the node's docker config), and raises the
  CRI's typed errors with the registry's own words: ``ImagePullError`` (ErrImagePull),
  ``ImageInspectError`` (InvalidImageName). The offline base image ``busybox:1.35`` is built locally
  instead of pulled.
- :func:`ensure_image` applies a pod's imagePullPolicy (Always / IfNotPresent / Never →
  ``ImageNeverPullError``) and :func:`default_pull_policy` is Kubernetes' defaulting (``:latest`` or
  no tag → Always, else IfNotPresent).
- :func:`auth_for_image` picks, from pods' imagePullSecrets (Secret ``data``), the credentials for an
  image's registry, as the kubelet's keyring does.
- ``image_fs_info`` reports bytes and inodes used by the store for the kubelet's image GC.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

from kubelet import cri
from kubelet.runtime.images.auth import Credentials, from_auth_config, from_pull_secret, load_docker_config, lookup
from kubelet.runtime.images.base import BASE_LATEST, BASE_TAG, ensure_base_images
from kubelet.runtime.images.errors import ImageError, ImageNotFound, InvalidReference
from kubelet.runtime.images.reference import parse
from kubelet.runtime.images.registry import RegistryClient, RegistryConfig
from kubelet.runtime.images.store import ImageStore, StoredImage

logger = logging.getLogger(__name__)

ALWAYS, IF_NOT_PRESENT, NEVER = "Always", "IfNotPresent", "Never"


def default_pull_policy(image: str) -> str:
    """Kubernetes' defaulting: Always for ``:latest`` or no tag (and no digest), IfNotPresent otherwise."""
    try:
        r = parse(image)
    except InvalidReference:
        return IF_NOT_PRESENT
    if r.digest is None and (r.tag == "latest"):
        return ALWAYS
    return IF_NOT_PRESENT


def auth_for_image(image: str, secrets: Sequence[Mapping[str, str]]) -> cri.AuthConfig | None:
    """The first credentials in ``secrets`` (each a dockerconfigjson Secret's ``data``) for the image's registry."""
    try:
        domain = parse(image).domain
    except InvalidReference:
        return None
    for data in secrets:
        creds = lookup(from_pull_secret(data), domain)
        if creds is not None:
            return cri.AuthConfig(username=creds.username, password=creds.password,
                                  identity_token=creds.identity_token, registry_token=creds.registry_token)
    return None


def to_cri_image(img: StoredImage) -> cri.Image:
    user = str((img.config.get("config") or {}).get("User") or "")
    name = user.split(":", 1)[0]
    uid = int(name) if name.isdigit() else None
    return cri.Image(id=img.id, repo_tags=img.tags, repo_digests=img.repo_digests, size=img.size,
                     uid=uid, username="" if name.isdigit() else name)


class ImageService:
    """``kubelet.cri.ImageService`` on an :class:`ImageStore`."""

    def __init__(self, store: ImageStore, registry: RegistryConfig | None = None) -> None:
        """``registry`` defaults to the store's ``registries.json`` plus the node's ~/.docker/config.json."""
        self.store = store
        if registry is None:
            try:
                registry = RegistryConfig.load(store.root, credentials=load_docker_config())
            except ImageError as exc:
                logger.warning("registry settings ignored: %s", exc)
                registry = RegistryConfig()
        self.registry = registry
        self._pulls: dict[str, asyncio.Future[str]] = {}

    async def pull_image(self, ref: str, auth: cri.AuthConfig | None = None) -> str:
        try:
            r = parse(ref)
        except InvalidReference as exc:
            raise cri.ImageInspectError(str(exc)) from None
        key = str(r)
        if key in (BASE_TAG, BASE_LATEST) and (key == BASE_TAG or self.store.get(key) is None):
            img = await asyncio.to_thread(ensure_base_images, self.store)
            return img.id
        if key in self._pulls:       # one pull per reference at a time; others wait for it
            return await asyncio.shield(self._pulls[key])
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pulls[key] = fut
        try:
            image_id = await self._pull(key, r.domain, auth)
            fut.set_result(image_id)
            return image_id
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()          # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            del self._pulls[key]

    async def _pull(self, ref: str, domain: str, auth: cri.AuthConfig | None) -> str:
        creds: dict[str, Credentials] = dict(self.registry.credentials)
        if auth is not None:
            creds[domain] = from_auth_config(auth)
        cfg = RegistryConfig(offline=self.registry.offline, insecure_registries=self.registry.insecure_registries,
                             concurrency=self.registry.concurrency, retries=self.registry.retries,
                             timeout=self.registry.timeout, credentials=creds)
        try:
            async with RegistryClient(cfg) as client:
                img = await client.pull(self.store, ref)
        except ImageError as exc:
            raise cri.ImagePullError(str(exc)) from None
        logger.info("pulled %s as %s", ref, img.id[:19])
        return img.id

    async def image_status(self, ref: str) -> cri.Image | None:
        img = await asyncio.to_thread(self.store.get, ref)
        return to_cri_image(img) if img is not None else None

    async def list_images(self) -> list[cri.Image]:
        return [to_cri_image(i) for i in await asyncio.to_thread(self.store.list)]

    async def remove_image(self, ref: str) -> None:
        """Remove the image and all its names (CRI RemoveImage) and free the content nothing else uses
        (layers still mounted by containers stay); a missing image is not an error."""
        def rm() -> None:
            img = self.store.get(ref)
            if img is None:
                return
            try:
                self.store.remove(img.id, force=True)
            except ImageNotFound:
                return
            self.store.prune(dangling_images=False)
        await asyncio.to_thread(rm)

    async def image_fs_info(self) -> cri.FilesystemUsage:
        def info() -> cri.FilesystemUsage:
            used, inodes = self.store.usage()
            st = os.statvfs(self.store.root)
            return cri.FilesystemUsage(mountpoint=str(self.store.root), used_bytes=used, inodes_used=inodes,
                                       capacity_bytes=st.f_blocks * st.f_frsize,
                                       available_bytes=st.f_bavail * st.f_frsize)
        return await asyncio.to_thread(info)


async def ensure_image(service: cri.ImageService, ref: str, policy: str | None = None,
                       auth: cri.AuthConfig | None = None) -> str:
    """Apply ``policy`` (default: Kubernetes' defaulting for ``ref``); returns the image id.

    Raises:
        cri.ImageNeverPullError: Never and not present. cri.ImagePullError, cri.ImageInspectError.
    """
    policy = policy or default_pull_policy(ref)
    if policy not in (ALWAYS, IF_NOT_PRESENT, NEVER):
        raise cri.ImageInspectError(f"unknown imagePullPolicy {policy!r}")
    present = await service.image_status(ref)
    if policy == NEVER:
        if present is None:
            raise cri.ImageNeverPullError(
                f'Container image "{ref}" is not present with pull policy of Never')
        return present.id
    if policy == IF_NOT_PRESENT and present is not None:
        return present.id
    return await service.pull_image(ref, auth)


def open_service(root: Path | str, registry: RegistryConfig | None = None) -> ImageService:
    """An ImageService on the store at ``root`` with the base image in place."""
    store = ImageStore(root)
    ensure_base_images(store)
    return ImageService(store, registry)
