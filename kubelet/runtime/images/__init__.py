"""Images: the node's OCI image store, layer unpacking, import/export, registry pull/push and build.

Public surface (the runtime's snapshotter and the kubelet's ImageService use these):

- :class:`ImageStore` (``get(ref) -> StoredImage | None``, ``resolve``, ``list``, ``tag``, ``remove``,
  ``prune``, ``usage``), :class:`StoredImage` (``.id``, ``.config``, ``.layers``), :class:`StoredLayer`
  (``.digest``, ``.diff_id``, ``.size``, ``.path`` = an overlay lowerdir).
- :func:`ensure_base_images` (the offline ``busybox:1.35``), :func:`parse_reference`.
- errors in :mod:`kubelet.runtime.images.errors`.
"""

from kubelet.runtime.images.base import ensure_base_images
from kubelet.runtime.images.errors import ImageError, ImageNotFound, InvalidReference
from kubelet.runtime.images.reference import Reference, parse as parse_reference
from kubelet.runtime.images.store import DEFAULT_ROOT, ImageStore, StoredImage, StoredLayer

__all__ = ["DEFAULT_ROOT", "ImageError", "ImageNotFound", "ImageStore", "InvalidReference", "Reference",
           "StoredImage", "StoredLayer", "ensure_base_images", "parse_reference"]
