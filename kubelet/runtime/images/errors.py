"""The image tooling's errors, one subtree under ``KubeliteError``.

The tree::

    ImageError                    root of everything the image store, pull, push and build raise
    ├── InvalidReference          the reference cannot be parsed (kubelet: InvalidImageName)
    ├── ImageNotFound             no image by that name/id in the store
    ├── ImageInUse                rm of an image a tag/child still needs (without force)
    ├── DigestMismatch            content does not hash to its digest: refused, nothing stored
    ├── UnsafeArchive             a tar entry escapes its root, or an archive is malformed
    ├── UnsupportedMediaType      a manifest/layer type we cannot handle
    ├── RegistryError             the registry said no (``str()`` carries its message); ``status``
    │   └── OfflineError          offline mode forbids this (non-loopback) registry
    └── BuildError                a Dockerfile is wrong or a build step failed
"""

from __future__ import annotations

from kubelite.api.errors import KubeliteError


class ImageError(KubeliteError):
    """Root of the image tooling's errors."""


class InvalidReference(ImageError):
    """An image reference that does not parse."""


class ImageNotFound(ImageError):
    """No image by that name or id."""


class ImageInUse(ImageError):
    """The image is still needed (several tags, use force)."""


class DigestMismatch(ImageError):
    """Content does not hash to its declared digest (or size)."""


class UnsafeArchive(ImageError):
    """A tar/archive that is malformed or tries to write outside its root."""


class UnsupportedMediaType(ImageError):
    """A manifest or layer media type we cannot handle."""


class RegistryError(ImageError):
    """A registry refused a request; the message is the registry's own where it gave one."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class OfflineError(RegistryError):
    """Offline mode: only loopback registries may be contacted."""


class BuildError(ImageError):
    """A Dockerfile error or a failed build step."""
