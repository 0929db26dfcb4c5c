"""Image references parsed and normalised as Docker and Kubernetes do (distribution/reference).

``busybox`` → ``docker.io/library/busybox:latest``; ``host:port/repo:tag``; ``repo@sha256:…``;
``repo:tag@sha256:…`` keeps both (the digest wins for pulls). No I/O here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from kubelet.runtime.images.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
DOCKER_REGISTRY_HOST = "registry-1.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_ID_RE = re.compile(r"^(?:sha256:)?[a-f0-9]{64}$")


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``docker.io/library/busybox`` (the repository, fully qualified)."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """The short form Docker prints: ``busybox:1.35``, ``127.0.0.1:5000/x/y:1``."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path[len(OFFICIAL_PREFIX):] if self.path.startswith(OFFICIAL_PREFIX) else self.path
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    @property
    def familiar_repo(self) -> str:
        return Reference(self.domain, self.path).familiar

    @property
    def registry_host(self) -> str:
        """The host:port the distribution API lives on."""
        return DOCKER_REGISTRY_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def object(self) -> str:
        """What goes after ``/manifests/``: the digest if any, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.domain, self.path, None, digest)


def parse(ref: str) -> Reference:
    """Parse and normalise ``ref`` (adds docker.io, library/ and :latest as Docker does).

    Raises:
        InvalidReference: with the reason, e.g. uppercase repository names.
    """
    if not ref or ref != ref.strip():
        raise InvalidReference(f"invalid reference format: {ref!r}")
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid reference format: bad digest in {ref!r}")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid reference format: bad tag in {ref!r}")
    first, sep, remainder = rest.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost" or first.lower() != first):
        domain, path = first, remainder
        if not _DOMAIN_RE.match(domain):
            raise InvalidReference(f"invalid reference format: bad registry host in {ref!r}")
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if not _PATH_RE.match(path):
        if path.lower() != path:
            raise InvalidReference(f"invalid reference format: repository name must be lowercase: {ref!r}")
        raise InvalidReference(f"invalid reference format: {ref!r}")
    if len(domain) + 1 + len(path) > 255:
        raise InvalidReference(f"invalid reference format: repository name too long: {ref!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def looks_like_id(ref: str) -> bool:
    """A full image id (``sha256:<hex>`` or bare 64 hex), as opposed to a name."""
    return bool(_ID_RE.match(ref))


def is_loopback_host(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1 (with or without a port): reached over plain HTTP."""
    h = host
    if h.startswith("["):
        h = h[1:h.index("]")] if "]" in h else h[1:]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False
