"""The store: names, shared layers, verified blobs, rm/tag/prune, and the offline base image."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from kubelet.runtime.images import oci
from kubelet.runtime.images.base import BASE_LATEST, BASE_TAG, ensure_base_images
from kubelet.runtime.images.errors import DigestMismatch, ImageInUse, ImageNotFound
from kubelet.runtime.images.layers import add_bytes, changes, write_layer
from kubelet.runtime.images.store import ImageStore, StoredImage
from tests.unit.images.conftest import Entry, base_store, make_tar


def _image(store: ImageStore, layers: list[bytes], names: list[str], cmd: str = "sh") -> StoredImage:
    descs, diff_ids = [], []
    for raw in layers:
        gz = make_tar([], True) if raw is None else raw
        d, _ = store.blobs.put_stream(io.BytesIO(gz))
        descs.append({"mediaType": oci.OCI_LAYER_GZIP, "digest": d, "size": len(gz)})

        diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(gz)).hexdigest())
    config = oci.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": [cmd]},
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    store.blobs.put_bytes(config)
    manifest = oci.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                          "config": oci.descriptor(oci.OCI_CONFIG, config), "layers": descs})
    return store.commit_image(manifest, names)


def test_base_image_is_reproducible_and_complete(tmp_path: Path) -> None:
    a = ensure_base_images(ImageStore(tmp_path / "a"))
    b = ensure_base_images(ImageStore(tmp_path / "b"))
    assert a.id == b.id and a.manifest_digest == b.manifest_digest
    assert set(a.names) == {BASE_TAG, BASE_LATEST}
    root = a.layers[0].path
    assert os.readlink(root / "bin/sh") == "/bin/busybox" and os.access(root / "bin/busybox", os.X_OK)
    assert "nobody:x:65534" in (root / "etc/passwd").read_text()
    assert oct(os.stat(root / "tmp").st_mode & 0o7777) == "0o1777"
    assert a.config["config"]["Cmd"] == ["sh"] and a.config["config"]["Env"][0].startswith("PATH=")
    again = ensure_base_images(ImageStore(tmp_path / "a"))
    assert again.id == a.id


def test_lookups(tmp_path: Path, base_template: Path) -> None:
    store = base_store(base_template, tmp_path / "s")
    img = ensure_base_images(store)
    for ref in ("busybox", "busybox:1.35", "docker.io/library/busybox:latest", img.id, img.id[7:19],
                f"busybox@{img.manifest_digest}"):
        got = store.get(ref)
        assert got is not None and got.id == img.id, ref
    assert store.get("busybox:9") is None and store.get("nope") is None
    assert img.repo_digests == (f"docker.io/library/busybox@{img.manifest_digest}",)
    with pytest.raises(ImageNotFound):
        store.resolve("alpine")


def test_two_images_share_their_base_layer(store: ImageStore) -> None:
    base = make_tar([Entry("bin", "dir"), Entry("bin/tool", data=b"tool" * 1000)])
    a = _image(store, [base, make_tar([Entry("a", data=b"a")])], ["a:1"])
    b = _image(store, [base, make_tar([Entry("b", data=b"b")])], ["b:1"])
    assert a.layers[0].path == b.layers[0].path
    assert os.stat(a.layers[0].path / "bin/tool").st_ino == os.stat(b.layers[0].path / "bin/tool").st_ino
    assert len(list(store.layers_dir.iterdir())) == 3


def test_corrupted_blob_refused_and_nothing_half_stored(store: ImageStore) -> None:
    before = sorted(store.blobs.all())
    data = b"some layer bytes"
    wrong = "sha256:" + hashlib.sha256(b"other").hexdigest()
    with pytest.raises(DigestMismatch, match="failed verification"):
        store.blobs.put_stream(io.BytesIO(data), wrong)
    with pytest.raises(DigestMismatch):
        store.blobs.put_bytes(data, wrong)
    assert sorted(store.blobs.all()) == before
    assert not any(store.blobs.tmp.iterdir())


def test_tag_rm_and_prune(store: ImageStore) -> None:
    img = _image(store, [make_tar([Entry("x", data=b"x")])], ["app:1"])
    store.tag("app:1", "app:2")
    assert set(store.resolve("app:2").names) == {"docker.io/library/app:1", "docker.io/library/app:2"}
    with pytest.raises(ImageInUse):
        store.remove(img.id)
    assert store.remove("app:1") == ["Untagged: docker.io/library/app:1"]
    assert store.get("app:2") is not None
    # retagging app:2 onto another image leaves the old one dangling (nameless), as Docker does
    other = _image(store, [make_tar([Entry("y", data=b"y")])], ["app:2"], cmd="other")
    dangling = [i for i in store.list() if not i.names]
    assert [i.id for i in dangling] == [img.id]
    report = store.prune()
    assert report.images == [img.id] and report.layers == 1 and report.blobs == 3
    assert [i.id for i in store.list()] == [other.id]
    assert not img.layers[0].path.exists() and other.layers[0].path.exists()
    assert store.remove("app:2") == ["Untagged: docker.io/library/app:2", f"Deleted: {other.id}"]
    store.prune()
    assert store.blobs.all() == [] and list(store.layers_dir.iterdir()) == []
    assert json.loads((store.root / "index.json").read_text())["manifests"] == []


def test_history_files_show_adds_changes_and_deletes(store: ImageStore) -> None:
    img = _image(store, [
        make_tar([Entry("etc", "dir"), Entry("etc/a", data=b"1"), Entry("etc/b", data=b"2"),
                  Entry("var/cache", "dir"), Entry("var/cache/x", data=b"x")]),
        make_tar([Entry("etc/.wh.a"), Entry("etc/b", data=b"3"), Entry("etc/c", data=b"4"),
                  Entry("var/cache/.wh..wh..opq"), Entry("var/cache/y", data=b"y")]),
    ], ["layered:1"])
    per_layer = list(changes([layer.path for layer in img.layers]))
    assert ("A", "/etc/a") in per_layer[0] and ("A", "/var/cache/x") in per_layer[0]
    assert set(per_layer[1]) >= {("D", "/etc/a"), ("C", "/etc/b"), ("A", "/etc/c"), ("D", "/var/cache/x"),
                                 ("A", "/var/cache/y")}


def test_written_layers_are_reproducible(store: ImageStore) -> None:
    def fill(tf: object) -> None:
        add_bytes(tf, "hello", b"world")  # type: ignore[arg-type]
    a = write_layer(store.blobs, fill)
    b = write_layer(store.blobs, fill)
    assert a == b and store.blobs.has(a.digest)


def test_concurrent_writers_keep_every_name(tmp_path: Path, base_template: Path) -> None:
    """Several processes committing and tagging at once: the index lock keeps every update."""
    import subprocess
    import sys
    root = base_store(base_template, tmp_path / "shared").root
    script = ("import sys; from kubelet.runtime.images.store import ImageStore; s = ImageStore(sys.argv[1]); "
              "[s.tag('busybox:1.35', f'w{sys.argv[2]}/t:{i}') for i in range(8)]")
    repo = Path(__file__).resolve().parents[3]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root), str(n)], cwd=repo,
                              env={**os.environ, "PYTHONPATH": str(repo)}) for n in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    names = set(ImageStore(root).resolve("busybox:1.35").names)
    assert {f"docker.io/w{n}/t:{i}" for n in range(3) for i in range(8)} <= names


def test_prune_waits_for_an_ingest_in_progress(store: ImageStore) -> None:
    import threading
    done = threading.Event()
    with store.ingesting():                       # a pull has written a blob no image names yet
        digest = store.blobs.put_bytes(b"layer in flight")
        t = threading.Thread(target=lambda: (store.prune(), done.set()))
        t.start()
        assert not done.wait(0.3)                 # prune waits for the ingest to finish
        assert store.blobs.has(digest)
        img = _image(store, [make_tar([Entry("x", data=b"x")])], ["inflight:1"])
    t.join(10)
    assert done.is_set() and store.get("inflight:1") is not None
    assert all(store.blobs.has(d) for d in [img.manifest_digest, img.id, img.layers[0].digest])
    assert not store.blobs.has(digest)            # the stray blob is collected after the ingest
