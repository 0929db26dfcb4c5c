"""Image archives in and out: docker-archive (``docker save``) and oci-archive (a tarred OCI layout).

Import detects the kind (``manifest.json`` → docker-archive, ``index.json`` → OCI), copies every
blob into the store verified against its digest, unpacks the layers and names the images.
Export writes either format, so Docker (``docker load``), Podman and skopeo read what kubelite builds.
Blocking I/O.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
from pathlib import Path
from typing import IO, Any

from kubelet.runtime.images import oci
from kubelet.runtime.images.errors import DigestMismatch, ImageError, InvalidReference, UnsafeArchive, UnsupportedMediaType
from kubelet.runtime.images.reference import parse
from kubelet.runtime.images.store import ImageStore, StoredImage
from kubelet.runtime.images.unpack import open_decompressed

logger = logging.getLogger(__name__)

DOCKER_ARCHIVE = "docker-archive"
OCI_ARCHIVE = "oci-archive"


def _member(tf: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    name = name.lstrip("./") if name.startswith("./") else name
    for candidate in (name, "./" + name):
        try:
            m = tf.getmember(candidate)
        except KeyError:
            continue
        while m.issym() or m.islnk():   # docker save links identical layers
            target = m.linkname if m.islnk() else str(Path(candidate).parent / m.linkname)
            m = tf.getmember(target.lstrip("./") if target.startswith("./") else target)
        return m
    raise UnsafeArchive(f"archive has no {name!r}")


def _read(tf: tarfile.TarFile, name: str) -> bytes:
    f = tf.extractfile(_member(tf, name))
    if f is None:
        raise UnsafeArchive(f"{name!r} in the archive is not a file")
    return f.read()


def _has(tf: tarfile.TarFile, name: str) -> bool:
    try:
        _member(tf, name)
        return True
    except UnsafeArchive:
        return False


def detect(path: Path) -> str:
    with _open(path) as tf:
        if _has(tf, "manifest.json"):
            return DOCKER_ARCHIVE
        if _has(tf, "index.json") and _has(tf, "oci-layout"):
            return OCI_ARCHIVE
    raise UnsafeArchive(f"{path} is neither a docker-archive (no manifest.json) nor an OCI archive (no index.json)")


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise UnsafeArchive(f"cannot read {path} as a tar archive: {exc}") from None


def import_archive(store: ImageStore, path: Path | str, names: list[str] | None = None) -> list[StoredImage]:
    """Import every image in the archive at ``path``; ``names`` replace the archive's own names.

    Raises:
        UnsafeArchive, DigestMismatch (nothing of that image is named), InvalidReference.
    """
    path = Path(path)
    kind = detect(path)
    with store.ingesting(), _open(path) as tf:
        if kind == DOCKER_ARCHIVE:
            return _import_docker(store, tf, names, path)
        return _import_oci(store, tf, names, path)


def _put_member(store: ImageStore, tf: tarfile.TarFile, name: str, digest: str | None) -> tuple[str, int]:
    m = _member(tf, name)
    f = tf.extractfile(m)
    if f is None:
        raise UnsafeArchive(f"{name!r} in the archive is not a file")
    return store.blobs.put_stream(f, digest, m.size)


def _import_docker(store: ImageStore, tf: tarfile.TarFile, names: list[str] | None, path: Path) -> list[StoredImage]:
    try:
        manifest = json.loads(_read(tf, "manifest.json"))
    except ValueError as exc:
        raise UnsafeArchive(f"{path}: manifest.json is not JSON: {exc}") from None
    out = []
    for entry in manifest:
        cfg_name = entry["Config"]
        stem = Path(cfg_name).name.removesuffix(".json")
        expected = f"sha256:{stem}" if len(stem) == 64 else None
        config_digest, config_size = _put_member(store, tf, cfg_name, expected)
        config = store.load_json(config_digest)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(entry.get("Layers", [])):
            raise UnsafeArchive(f"{path}: {len(entry.get('Layers', []))} layers for {len(diff_ids)} diff_ids")
        layers = []
        for layer_name, diff_id in zip(entry.get("Layers", []), diff_ids):
            digest, size = _put_member(store, tf, layer_name, None)
            with store.blobs.path(digest).open("rb") as f:
                gz = f.read(2) == b"\x1f\x8b"
            if not gz and digest != diff_id:
                store.blobs.remove(digest)
                raise DigestMismatch(f"{path}: layer {layer_name} hashes to {digest}, the config says {diff_id}")
            layers.append({"mediaType": oci.OCI_LAYER_GZIP if gz else oci.OCI_LAYER, "digest": digest, "size": size})
        mbytes = oci.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                            "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest, "size": config_size},
                            "layers": layers})
        tags = names if names is not None else list(entry.get("RepoTags") or [])
        out.append(store.commit_image(mbytes, tags))
    return out


def _import_oci(store: ImageStore, tf: tarfile.TarFile, names: list[str] | None, path: Path) -> list[StoredImage]:
    try:
        index = json.loads(_read(tf, "index.json"))
    except ValueError as exc:
        raise UnsafeArchive(f"{path}: index.json is not JSON: {exc}") from None

    def blob(desc: dict[str, Any]) -> bytes:
        digest = desc["digest"]
        _put_member(store, tf, "blobs/" + digest.replace(":", "/"), digest)
        return store.blobs.read(digest)

    out = []
    for entry in index.get("manifests", []):
        top = blob(entry)
        top_json = json.loads(top)
        mt = entry.get("mediaType") or top_json.get("mediaType") or oci.OCI_MANIFEST
        desc, mbytes = entry, top
        if mt in oci.INDEX_TYPES:
            try:
                desc = oci.pick_platform(top_json)
            except LookupError as exc:
                raise UnsupportedMediaType(f"{path}: {exc}") from None
            mbytes = blob(desc)
        elif mt not in oci.MANIFEST_TYPES:
            raise UnsupportedMediaType(f"{path}: unsupported manifest type {mt!r}")
        m = json.loads(mbytes)
        blob(m["config"])
        for layer in m.get("layers", []):
            blob(layer)
        if names is not None:
            tags = names
        else:
            tags = [_name_of(entry, path)]
        repo_digest = entry["digest"] if mt in oci.INDEX_TYPES else None
        out.append(store.commit_image(mbytes, tags, repo_digest=repo_digest,
                                      extra_blobs=(top,) if repo_digest else (),
                                      media_type=desc.get("mediaType")))
    return out


def _name_of(entry: dict[str, Any], path: Path) -> str:
    ann = entry.get("annotations") or {}
    for candidate in (ann.get(oci.ANNOTATION_IMAGE_NAME), ann.get(oci.ANNOTATION_REF_NAME)):
        if candidate and ("/" in candidate or ":" in candidate):
            try:
                return str(parse(candidate))
            except InvalidReference:
                pass
    tag = ann.get(oci.ANNOTATION_REF_NAME) or "latest"
    stem = path.name.split(".")[0].lower() or "imported"
    try:
        return str(parse(f"localhost/{stem}:{tag}"))
    except InvalidReference:
        return str(parse(f"localhost/imported:{tag}"))


# ------------------------------------------------------------------------------------------ export
def _add_file(out: tarfile.TarFile, name: str, src: Path | bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.mode, ti.mtime = 0o644, 0
    if isinstance(src, bytes):
        ti.size = len(src)
        out.addfile(ti, io.BytesIO(src))
    else:
        ti.size = src.stat().st_size
        with src.open("rb") as f:
            out.addfile(ti, f)


def _add_dir(out: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
    out.addfile(ti)


def export_archive(store: ImageStore, refs: list[str], dest: Path | str | IO[bytes], fmt: str = OCI_ARCHIVE) -> None:
    """Write the images ``refs`` to ``dest`` (path or binary stream) as ``fmt``."""
    images = [(ref, store.resolve(ref)) for ref in refs]
    if fmt not in (OCI_ARCHIVE, DOCKER_ARCHIVE):
        raise ImageError(f"unknown archive format {fmt!r} (use {OCI_ARCHIVE} or {DOCKER_ARCHIVE})")
    if isinstance(dest, (str, Path)):
        tmp = Path(str(dest) + ".part")
        try:
            with tmp.open("wb") as f:
                _export(store, images, f, fmt)
            tmp.replace(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    else:
        _export(store, images, dest, fmt)


def _names_for(ref: str, img: StoredImage) -> list[str]:
    try:
        r = parse(ref)
        if r.digest is None and str(r) in img.names:
            return [str(r)]
    except InvalidReference:
        pass
    return list(img.tags)


def _export(store: ImageStore, images: list[tuple[str, StoredImage]], f: IO[bytes], fmt: str) -> None:
    with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as out:
        if fmt == OCI_ARCHIVE:
            _export_oci(store, images, out)
        else:
            _export_docker(store, images, out)


def _export_oci(store: ImageStore, images: list[tuple[str, StoredImage]], out: tarfile.TarFile) -> None:
    _add_file(out, "oci-layout", oci.dumps({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}))
    entries = []
    blobs: list[str] = []
    for ref, img in images:
        for d in [img.manifest_digest, img.manifest["config"]["digest"], *(layer.digest for layer in img.layers)]:
            if d not in blobs:
                blobs.append(d)
        base = {"mediaType": img.media_type, "digest": img.manifest_digest,
                "size": store.blobs.size(img.manifest_digest)}
        for name in _names_for(ref, img) or [None]:
            e = dict(base)
            if name:
                tag = name.rsplit(":", 1)[1]
                e["annotations"] = {oci.ANNOTATION_IMAGE_NAME: name, oci.ANNOTATION_REF_NAME: tag}
            entries.append(e)
    _add_file(out, "index.json", oci.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": entries}))
    _add_dir(out, "blobs")
    _add_dir(out, "blobs/sha256")
    for d in blobs:
        _add_file(out, "blobs/sha256/" + d[7:], store.blobs.path(d))


def _export_docker(store: ImageStore, images: list[tuple[str, StoredImage]], out: tarfile.TarFile) -> None:
    manifest = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for ref, img in images:
        cfg = img.id[7:] + ".json"
        if cfg not in written:
            _add_file(out, cfg, store.blobs.path(img.id))
            written.add(cfg)
        layer_names = []
        for layer in img.layers:
            name = f"{layer.diff_id[7:]}/layer.tar"
            layer_names.append(name)
            if name in written:
                continue
            written.add(name)
            _add_dir(out, layer.diff_id[7:])
            src = store.blobs.path(layer.digest)
            if layer.digest == layer.diff_id:
                _add_file(out, name, src)
                continue
            tmp_fd, tmp = store.blobs.temp_file(".tar")
            try:
                stream, proc = open_decompressed(src)
                with open(tmp_fd, "wb") as t, stream:
                    shutil.copyfileobj(stream, t, 1 << 20)
                if proc is not None:
                    proc.wait()
                _add_file(out, name, tmp)
            finally:
                tmp.unlink(missing_ok=True)
        tags = [parse(n).familiar for n in _names_for(ref, img)]
        for n in _names_for(ref, img):
            r = parse(n)
            repositories.setdefault(r.familiar_repo, {})[r.tag or "latest"] = layer.diff_id[7:] if img.layers else ""
        manifest.append({"Config": cfg, "RepoTags": tags or None, "Layers": layer_names})
    _add_file(out, "manifest.json", json.dumps(manifest).encode())
    _add_file(out, "repositories", json.dumps(repositories).encode())


