"""Import docker-archive and oci-archive tarballs made by skopeo from a umoci image; export both ways."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from kubelet.runtime.images.archive import DOCKER_ARCHIVE, OCI_ARCHIVE, export_archive, import_archive
from kubelet.runtime.images.errors import DigestMismatch, UnsafeArchive
from kubelet.runtime.images.layers import changes
from kubelet.runtime.images.store import ImageStore

pytestmark = pytest.mark.integration


def _skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def archives(umoci_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("archives")
    _skopeo("copy", "-q", f"oci:{umoci_layout}:1.0", f"docker-archive:{d}/docker.tar:mini/x:1.0")
    _skopeo("copy", "-q", f"oci:{umoci_layout}:1.0", f"oci-archive:{d}/oci.tar:1.0")
    return {"docker": d / "docker.tar", "oci": d / "oci.tar"}


def test_import_both_kinds_share_layers(tmp_path: Path, archives: dict[str, Path]) -> None:
    store = ImageStore(tmp_path / "s")
    [a] = import_archive(store, archives["docker"])
    [b] = import_archive(store, archives["oci"], names=["mini/x:oci"])
    assert a.names == ("docker.io/mini/x:1.0",) and b.names == ("docker.io/mini/x:oci",)
    assert a.id == b.id and len(a.layers) == 3
    assert [la.path for la in a.layers] == [lb.path for lb in b.layers]
    assert len(list(store.layers_dir.iterdir())) == 3
    top = a.layers[2].path
    wh = os.lstat(top / "etc/one")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    per_layer = list(changes([layer.path for layer in a.layers]))
    assert ("D", "/etc/one") in per_layer[2] and ("A", "/etc/two") in per_layer[2]
    assert ("A", "/bin/busybox") in per_layer[0]


def test_oci_archive_names_from_the_file_when_only_a_tag(tmp_path: Path, archives: dict[str, Path]) -> None:
    [img] = import_archive(ImageStore(tmp_path / "s"), archives["oci"])
    assert img.names == ("localhost/oci:1.0",)


@pytest.mark.parametrize("fmt", [DOCKER_ARCHIVE, OCI_ARCHIVE])
def test_export_is_read_by_skopeo_and_reimports(tmp_path: Path, archives: dict[str, Path], fmt: str) -> None:
    store = ImageStore(tmp_path / "s")
    [img] = import_archive(store, archives["docker"])
    out = tmp_path / "out.tar"
    export_archive(store, ["mini/x:1.0"], out, fmt)
    src = f"docker-archive:{out}" if fmt == DOCKER_ARCHIVE else f"oci-archive:{out}:1.0"
    info = json.loads(_skopeo("inspect", "--config", src))
    assert info["rootfs"]["diff_ids"] == [layer.diff_id for layer in img.layers]
    [again] = import_archive(ImageStore(tmp_path / "s2"), out)
    assert again.id == img.id and "docker.io/mini/x:1.0" in again.names


def test_corrupted_archive_blob_refused_nothing_stored(tmp_path: Path, archives: dict[str, Path]) -> None:
    bad = tmp_path / "bad"
    subprocess.run(["tar", "-C", str(tmp_path), "-xf", str(archives["oci"])], check=True)
    index = json.loads((tmp_path / "index.json").read_text())
    manifest = json.loads((tmp_path / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    layer = tmp_path / "blobs/sha256" / manifest["layers"][-1]["digest"][7:]
    data = bytearray(layer.read_bytes())
    data[-20] ^= 0xFF
    layer.write_bytes(bytes(data))
    subprocess.run(["tar", "-C", str(tmp_path), "-cf", str(bad), "oci-layout", "index.json", "blobs"], check=True)
    store = ImageStore(tmp_path / "s")
    with pytest.raises(DigestMismatch, match="failed verification"):
        import_archive(store, bad)
    assert store.list() == []
    assert not any(store.blobs.tmp.iterdir())
    assert manifest["layers"][-1]["digest"] not in store.blobs.all()


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(UnsafeArchive):
        import_archive(ImageStore(tmp_path / "s"), junk)
