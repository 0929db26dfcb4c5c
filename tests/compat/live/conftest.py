"""A live single-node cluster (``kubelite up``: etcd, apiserver, scheduler, controller-manager and a kubelet
running real containers) for the kubectl compat matrix, from the shared harness
(:mod:`tests.support.upcluster`); the node's busybox image store is built once for the session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.upcluster import UpCluster, up_cluster


@pytest.fixture(scope="session")
def compat_image_root() -> Iterator[Path]:
    from kubelet.runtime.images import ImageStore, ensure_base_images
    root = Path(tempfile.mkdtemp(prefix="kubelite-cmpimg", dir="/tmp"))
    root.chmod(0o755)
    ensure_base_images(ImageStore(root))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(compat_image_root: Path) -> Iterator[UpCluster]:
    with up_cluster("cmp", compat_image_root, cgroup_root="kubelite-cmp{tag}/cmp{tag}",
                    up_args=["--kubelet-arg=--crash-loop-base=1"]) as cl:
        yield cl
