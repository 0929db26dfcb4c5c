"""OCI and Docker media types, descriptors and the JSON encoding used for manifests and configs.

Pure data helpers shared by the store, archives, registry client and builder. No I/O here.
"""

from __future__ import annotations

import hashlib
import json
import platform
from typing import Any

OCI_LAYOUT_VERSION = "1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT_MANIFESTS = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_NONDIST_GZIP, DOCKER_LAYER_GZIP, DOCKER_LAYER_FOREIGN,
               "application/vnd.oci.image.layer.nondistributable.v1.tar")

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REPO_DIGEST = "io.kubelite.image.repo-digest"
ANNOTATION_CREATED = "org.opencontainers.image.created"

EMPTY_TAR_DIFF_ID = "sha256:" + hashlib.sha256(b"\0" * 1024).hexdigest()


def dumps(obj: Any) -> bytes:
    """Compact JSON as written into blobs (stable: the same object gives the same digest)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    d.update({k: v for k, v in extra.items() if v})
    return d


def host_platform() -> tuple[str, str]:
    """(os, architecture) in OCI words for this machine; amd64 when unknown."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(platform.machine(), "amd64")
    return "linux", arch


def pick_platform(index: dict[str, Any], os_: str | None = None, arch: str | None = None) -> dict[str, Any]:
    """The manifest descriptor of an index/manifest list matching os/arch (the host's by default).

    Raises:
        LookupError: when no entry matches; the message lists what the index offers.
    """
    want_os, want_arch = host_platform()
    want_os, want_arch = os_ or want_os, arch or want_arch
    offered = []
    for m in index.get("manifests", []):
        p = m.get("platform") or {}
        offered.append(f"{p.get('os', '?')}/{p.get('architecture', '?')}")
        if p.get("os") == want_os and p.get("architecture") == want_arch:
            if want_arch == "arm" and p.get("variant") not in (None, "v7"):
                continue
            return m
    raise LookupError(f"no manifest for {want_os}/{want_arch} in the index (it has: {', '.join(offered) or 'none'})")


def is_gzip_media(media_type: str) -> bool:
    return media_type.endswith("gzip") or media_type.endswith(".tar.gzip")
