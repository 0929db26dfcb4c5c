"""The node's image store: an OCI image layout plus one unpacked directory per layer, shared by all.

Layout under the root (default ``/var/lib/kubelite/images``)::

    oci-layout                     {"imageLayoutVersion": "1.0.0"}
    index.json                     one manifest descriptor per name (annotation
                                   ``org.opencontainers.image.ref.name`` = the full reference), plus
                                   nameless entries for dangling images
    blobs/sha256/<hex>             manifests, configs, layer blobs (verified before they appear)
    layers/sha256/<diff_id hex>/   each layer unpacked once (overlay whiteouts): an overlay lowerdir
    tmp/                           downloads in progress
    index.lock, gc.lock            flock: index updates are exclusive; ingesting holds gc.lock shared
                                   so that ``prune`` (exclusive) never removes what a pull just wrote
    build-cache.json               the build step cache (:mod:`buildcache`)

Garbage collection (``prune``, ``usage``) lives in :mod:`storegc`. Blocking I/O: async callers run these methods in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from kubelet.runtime.images import oci, storegc
from kubelet.runtime.images.blobs import BlobStore
from kubelet.runtime.images.errors import ImageInUse, ImageNotFound, InvalidReference, UnsupportedMediaType
from kubelet.runtime.images.reference import Reference, parse
from kubelet.runtime.images.storegc import PruneReport
from kubelet.runtime.images.unpack import unpack_layer

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path(os.environ.get("KUBELITE_IMAGE_ROOT", "/var/lib/kubelite/images"))


@dataclass(frozen=True, slots=True)
class StoredLayer:
    digest: str          # the blob's digest (compressed, as in the manifest)
    diff_id: str         # the uncompressed tar's digest (as in the config)
    size: int            # blob size
    media_type: str
    path: Path           # the unpacked layer: usable as an overlay lowerdir


@dataclass(frozen=True, slots=True)
class StoredImage:
    id: str                              # sha256:<config digest>
    config: dict[str, Any]               # the OCI image config
    layers: tuple[StoredLayer, ...]      # lowest first
    manifest_digest: str
    manifest: dict[str, Any]
    names: tuple[str, ...] = ()          # full references: docker.io/library/busybox:1.35
    repo_digests: tuple[str, ...] = ()   # docker.io/library/busybox@sha256:…
    size: int = 0                        # config + layer blobs
    media_type: str = oci.OCI_MANIFEST   # of the manifest

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if "@" not in n)

    @property
    def created(self) -> str:
        return str(self.config.get("created", ""))


class ImageStore:
    """Read and change the store. Every change to ``index.json`` happens under ``index.lock``."""

    def __init__(self, root: Path | str = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root)
        self.layers_dir = self.root / "layers" / "sha256"
        # lookups (every container create resolves its image) read no file the store did not change: blobs are
        # content-addressed, and index.json is replaced (a new inode) on every change
        self._blob_bytes: dict[str, bytes] = {}
        self._index: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._init_layout()

    def _init_layout(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        self.blobs.dir.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            self._atomic_write(layout, oci.dumps({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}))
        if not (self.root / "index.json").exists():
            with self.locked():
                if not (self.root / "index.json").exists():
                    self._write_index({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []})

    # ------------------------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def _flock(self, name: str, mode: int) -> Iterator[None]:
        fd = os.open(self.root / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock on the index."""
        return self._flock("index.lock", fcntl.LOCK_EX)

    def ingesting(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) while blobs and layers are written and not yet referenced by the index."""
        return self._flock("gc.lock", fcntl.LOCK_SH)

    # -------------------------------------------------------------------------------------- index
    def _atomic_write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def read_index(self) -> dict[str, Any]:
        try:
            return json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}

    def _write_index(self, index: dict[str, Any]) -> None:
        self._atomic_write(self.root / "index.json", json.dumps(index, indent=1).encode())

    @staticmethod
    def _entry_name(entry: dict[str, Any]) -> str | None:
        ann = entry.get("annotations") or {}
        return ann.get(oci.ANNOTATION_IMAGE_NAME) or ann.get(oci.ANNOTATION_REF_NAME)

    # -------------------------------------------------------------------------------------- reads
    def layer_path(self, diff_id: str) -> Path:
        return self.layers_dir / diff_id.split(":", 1)[1]

    def load_json(self, digest: str) -> dict[str, Any]:
        raw = self._blob_bytes.get(digest)
        if raw is None:
            raw = self.blobs.read(digest)
            if len(self._blob_bytes) >= 256:
                self._blob_bytes.clear()
            self._blob_bytes[digest] = raw
        return json.loads(raw)

    def _current_index(self) -> dict[str, Any]:
        """``read_index`` for lookups (not to be changed): parsed again only when index.json was replaced."""
        try:
            st = os.stat(self.root / "index.json")
        except FileNotFoundError:
            return self.read_index()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._index
        if cached is None or cached[0] != key:
            cached = self._index = (key, self.read_index())
        return cached[1]

    def _image(self, manifest_digest: str, entries: list[dict[str, Any]]) -> StoredImage:
        manifest = self.load_json(manifest_digest)
        config_digest = manifest["config"]["digest"]
        config = self.load_json(config_digest)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        layers = tuple(
            StoredLayer(desc["digest"], diff_id, int(desc.get("size", 0)), desc.get("mediaType", ""),
                        self.layer_path(diff_id))
            for desc, diff_id in zip(manifest.get("layers", []), diff_ids))
        names: list[str] = []
        repo_digests: list[str] = []
        for e in entries:
            name = self._entry_name(e)
            if not name:
                continue
            names.append(name)
            ann = e.get("annotations") or {}
            rd = f"{repo_of(name)}@{ann.get(oci.ANNOTATION_REPO_DIGEST) or manifest_digest}"
            if rd not in repo_digests:
                repo_digests.append(rd)
        size = int(manifest["config"].get("size", 0)) + sum(layer.size for layer in layers)
        mt = manifest.get("mediaType") or (entries[0].get("mediaType") if entries else None) or oci.OCI_MANIFEST
        return StoredImage(config_digest, config, layers, manifest_digest, manifest, tuple(names),
                           tuple(repo_digests), size, mt)

    def _grouped(self) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for e in self._current_index().get("manifests", []):
            if e.get("mediaType", oci.OCI_MANIFEST) in oci.MANIFEST_TYPES:
                groups.setdefault(e["digest"], []).append(e)
        return groups

    def list(self) -> list[StoredImage]:
        """Every image (one per manifest), newest index entries last."""
        out = []
        for digest, entries in self._grouped().items():
            try:
                out.append(self._image(digest, entries))
            except (FileNotFoundError, KeyError, ValueError) as exc:
                logger.warning("image %s is broken in the store: %s", digest, exc)
        return out

    def get(self, ref: str) -> StoredImage | None:
        """The image named ``ref`` (a reference, ``repo@digest``, an image id or an id prefix), or None."""
        groups = self._grouped()
        try:
            r: Reference | None = parse(ref)
        except InvalidReference:
            r = None
        if r is not None and r.digest is None:
            for digest, entries in groups.items():
                if any(self._entry_name(e) == str(r) for e in entries):
                    return self._image(digest, entries)
        elif r is not None:
            fallback = None
            for digest, entries in groups.items():
                for e in entries:
                    ann = e.get("annotations") or {}
                    if r.digest in (digest, ann.get(oci.ANNOTATION_REPO_DIGEST)):
                        name = self._entry_name(e)
                        if name and repo_of(name) == r.name:
                            return self._image(digest, entries)
                        fallback = fallback or (digest, entries)
            if fallback is not None:  # the same content under another name is the same image
                return self._image(*fallback)
        want = ref.removeprefix("sha256:")
        if len(want) >= 4 and all(c in "0123456789abcdef" for c in want):
            found = [img for img in self.list() if img.id.removeprefix("sha256:").startswith(want)]
            if len({img.id for img in found}) == 1:
                return found[0]
        return None

    def resolve(self, ref: str) -> StoredImage:
        img = self.get(ref)
        if img is None:
            raise ImageNotFound(f"image {ref!r} not found")
        return img

    # ------------------------------------------------------------------------------------- writes
    def ensure_layer(self, desc: dict[str, Any], diff_id: str) -> Path:
        """Unpack the layer blob ``desc`` once into its shared directory (checked against ``diff_id``)."""
        path = self.layer_path(diff_id)
        if path.is_dir():
            return path
        mt = desc.get("mediaType", oci.OCI_LAYER_GZIP)
        if mt not in oci.LAYER_TYPES and not mt.endswith("+zstd"):
            raise UnsupportedMediaType(f"layer media type {mt!r} is not supported")
        unpack_layer(self.blobs.path(desc["digest"]), path, diff_id)
        return path

    def commit_image(self, manifest: bytes, names: list[str] | tuple[str, ...] = (),
                     repo_digest: str | None = None, extra_blobs: tuple[bytes, ...] = (),
                     media_type: str | None = None) -> StoredImage:
        """Record an image whose config and layer blobs are in the store; unpack its layers; name it.

        Args:
            manifest: the manifest's exact bytes (its digest is the image's manifest digest).
            names: references to point at it (moved from whatever image had them).
            repo_digest: the digest the registry knows it by, when that differs (an index).
            extra_blobs: blobs to keep with it (e.g. that index).
            media_type: the manifest's type when its JSON does not say (the registry's Content-Type).
        """
        m = json.loads(manifest)
        mt = m.get("mediaType") or media_type or oci.OCI_MANIFEST
        if mt not in oci.MANIFEST_TYPES:
            raise UnsupportedMediaType(f"manifest media type {mt!r} is not supported")
        config = self.load_json(m["config"]["digest"])
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(m.get("layers", [])):
            raise UnsupportedMediaType(f"config has {len(diff_ids)} diff_ids for {len(m.get('layers', []))} layers")
        for desc, diff_id in zip(m.get("layers", []), diff_ids):
            self.ensure_layer(desc, diff_id)
        for blob in extra_blobs:
            self.blobs.put_bytes(blob)
        digest = self.blobs.put_bytes(manifest)
        full_names = [str(parse(n)) for n in names]
        with self.locked():
            index = self.read_index()
            entries = index.setdefault("manifests", [])
            entries[:] = [e for e in entries if self._entry_name(e) not in full_names
                          and not (e["digest"] == digest and self._entry_name(e) is None)]
            for name in full_names or [None]:
                ann = {}
                if name:
                    ann = {oci.ANNOTATION_REF_NAME: name, oci.ANNOTATION_IMAGE_NAME: name}
                    if repo_digest and repo_digest != digest:
                        ann[oci.ANNOTATION_REPO_DIGEST] = repo_digest
                if name is None and any(e["digest"] == digest for e in entries):
                    continue
                entry: dict[str, Any] = {"mediaType": mt, "digest": digest, "size": len(manifest)}
                if ann:
                    entry["annotations"] = ann
                entries.append(entry)
            self._keep_dangling(entries, index)
            self._write_index(index)
        return self.resolve(full_names[0] if full_names else digest)

    def _keep_dangling(self, entries: list[dict[str, Any]], index: dict[str, Any]) -> None:
        """An image that lost its last name stays, nameless (Docker's <none>), until rm or prune."""
        before = {e["digest"] for e in self._grouped_from(self.read_index())}
        now = {e["digest"] for e in entries}
        for digest in before - now:
            old = next(e for e in self.read_index()["manifests"] if e["digest"] == digest)
            entries.append({k: v for k, v in old.items() if k != "annotations"})

    @staticmethod
    def _grouped_from(index: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in index.get("manifests", []) if e.get("mediaType", oci.OCI_MANIFEST) in oci.MANIFEST_TYPES]

    def tag(self, source: str, target: str) -> StoredImage:
        img = self.resolve(source)
        name = str(parse(target))
        if "@" in name:
            raise InvalidReference(f"cannot tag with a digest reference: {target!r}")
        size = self.blobs.size(img.manifest_digest)
        with self.locked():
            index = self.read_index()
            entries = index["manifests"]
            entries[:] = [e for e in entries if self._entry_name(e) != name
                          and not (e["digest"] == img.manifest_digest and self._entry_name(e) is None)]
            entries.append({"mediaType": img.media_type,
                            "digest": img.manifest_digest, "size": size,
                            "annotations": {oci.ANNOTATION_REF_NAME: name, oci.ANNOTATION_IMAGE_NAME: name}})
            self._keep_dangling(entries, index)
            self._write_index(index)
        return self.resolve(name)

    def remove(self, ref: str, force: bool = False) -> list[str]:
        """``rmi``: untag a name; delete the image when its last name goes (or by id). Returns what went.

        Raises:
            ImageNotFound, ImageInUse (an id with several names, without ``force``).
        """
        img = self.resolve(ref)
        targets: set[str] = set()
        try:
            r = parse(ref)
            if r.digest is None:
                targets = {n for n in img.names if n == str(r)}
            else:
                targets = {n for n in img.names if repo_of(n) == r.name}
        except InvalidReference:
            pass
        if not targets and len(img.names) > 1 and not force:
            raise ImageInUse(f"image {img.id[7:19]} is referenced by several names ({', '.join(img.names)}): "
                             "remove them by name or use --force")
        with self.locked():
            index = self.read_index()
            if targets:
                index["manifests"] = [e for e in index["manifests"] if not (
                    e["digest"] == img.manifest_digest and self._entry_name(e) in targets)]
            else:
                index["manifests"] = [e for e in index["manifests"] if e["digest"] != img.manifest_digest]
            removed = [f"Untagged: {n}" for n in sorted(targets or set(img.names))]
            if not any(e["digest"] == img.manifest_digest for e in index["manifests"]):
                removed.append(f"Deleted: {img.id}")
            self._write_index(index)
        return removed

    # ----------------------------------------------------------------------------------------- gc
    def referenced(self) -> tuple[set[str], set[str]]:
        """(blob digests, layer diff_ids) that the index reaches."""
        return storegc.referenced(self)

    def prune(self, dangling_images: bool = True) -> PruneReport:
        """Remove nameless images (when asked), then every blob and layer no image references."""
        return storegc.prune(self, dangling_images)

    def layers_in_use(self) -> set[str]:
        """Names of layer dirs that some overlay mount (in any mount namespace) uses as a lowerdir."""
        return storegc.layers_in_use(self.layers_dir)

    def usage(self) -> tuple[int, int]:
        """(bytes used on disk, inodes used) by the whole store, hard links counted once."""
        return storegc.disk_usage(self.root)


def repo_of(name: str) -> str:
    """``docker.io/library/busybox:1.35`` and ``…@sha256:…`` → ``docker.io/library/busybox``."""
    repo = name.split("@", 1)[0]
    if repo.rfind(":") > repo.rfind("/"):
        repo = repo[:repo.rfind(":")]
    return repo
