"""Image pulls for the kubelet: pull policy, pull secrets → credentials, and pull backoff.

As Kubernetes' ``images.imageManager``: ``imagePullPolicy`` defaults to Always for ``:latest`` or an
untagged reference and IfNotPresent otherwise; a failed pull is ``ErrImagePull`` and later attempts
inside the backoff window are ``ImagePullBackOff``; policy Never with the image absent is
``ErrImageNeverPull``. ``kubernetes.io/dockerconfigjson`` (and legacy ``dockercfg``) secrets give the
ImageService its ``AuthConfig`` for the registry the reference names.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Mapping

from kubelet.cri import AuthConfig, ImageInspectError, ImagePullError, ImageService
from kubelet.planner import Backoff

logger = logging.getLogger(__name__)


class ImageError(Exception):
    """A container's image is not available; ``reason`` is its waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def pull_policy(container: Mapping[str, Any]) -> str:
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    image = str(container.get("image", ""))
    name = image.split("@", 1)[0]
    tagged = ":" in name.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    if not tagged or name.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def credentials_for(image: str, secrets: list[Mapping[str, Any]]) -> AuthConfig | None:
    """The first pull secret entry matching the image's registry, as an ``AuthConfig``."""
    registry = registry_of(image)
    aliases = {registry}
    if registry == "docker.io":
        aliases |= {"index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"}
    for secret in secrets:
        data = secret.get("data") or {}
        raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not raw:
            continue
        try:
            doc = json.loads(base64.b64decode(raw))
        except ValueError:
            continue
        auths = doc.get("auths", doc) if isinstance(doc, dict) else {}
        for key, entry in auths.items():
            host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
            if host in aliases or key in aliases:
                return AuthConfig(username=entry.get("username", ""), password=entry.get("password", ""),
                                  auth=entry.get("auth", ""), identity_token=entry.get("identitytoken", ""),
                                  registry_token=entry.get("registrytoken", ""))
    return None


class ImageManager:
    """Ensures a container's image is present, honouring policy and backoff (times in seconds)."""

    def __init__(self, images: ImageService, backoff: Backoff | None = None) -> None:
        self.images = images
        self.backoff = backoff or Backoff(base=10.0, cap=300.0)
        self._failed: dict[str, tuple[float, str]] = {}      # key → (time of failure, message)

    async def ensure_image(self, pod: Mapping[str, Any], container: Mapping[str, Any],
                           pull_secrets: list[Mapping[str, Any]], now: float,
                           events: list[tuple[str, str, str]] | None = None) -> tuple[str, Any]:
        """Returns (image id, the ``cri.Image``); appends Pulling/Pulled events. Raises :class:`ImageError`."""
        events = events if events is not None else []
        image = str(container.get("image", ""))
        if not image:
            raise ImageError("InvalidImageName", "image is empty")
        policy = pull_policy(container)
        try:
            present = await self.images.image_status(image)
        except ImageInspectError as exc:
            raise ImageError("InvalidImageName", f'Failed to apply default image tag "{image}": {exc}') from exc
        if present is not None and policy != "Always":
            events.append(("Normal", "Pulled", f'Container image "{image}" already present on machine'))
            return present.id, present
        if policy == "Never":
            raise ImageError("ErrImageNeverPull",
                             f'Container image "{image}" is not present with pull policy of Never')
        key = f"{(pod.get('metadata') or {}).get('uid', '')}/{image}"
        failed = self._failed.get(key)
        if failed is not None and self.backoff.remaining(key, failed[0], now) > 0:
            raise ImageError("ImagePullBackOff", f'Back-off pulling image "{image}": {failed[1]}')
        events.append(("Normal", "Pulling", f'Pulling image "{image}"'))
        t0 = time.monotonic()
        try:
            image_id = await self.images.pull_image(image, credentials_for(image, pull_secrets))
        except ImagePullError as exc:
            self.backoff.next(key, now)
            self._failed[key] = (now, str(exc))
            logger.info("pull of %s failed: %s", image, exc)
            raise ImageError("ErrImagePull", f'Failed to pull image "{image}": {exc}') from exc
        except ImageInspectError as exc:
            raise ImageError("InvalidImageName", f'Failed to apply default image tag "{image}": {exc}') from exc
        self._failed.pop(key, None)
        events.append(("Normal", "Pulled", f'Successfully pulled image "{image}" in '
                                           f'{time.monotonic() - t0:.3f}s'))
        status = await self.images.image_status(image_id) or await self.images.image_status(image)
        return image_id, status

    def forget(self, uid: str) -> None:
        for key in [k for k in self._failed if k.startswith(uid + "/")]:
            del self._failed[key]
        self.backoff.forget(uid + "/")
