"""A live single-node cluster (``kubelite up``: etcd, apiserver, scheduler, controller-manager and a kubelet
running real containers) for the kubectl compat matrix, from the shared harness
(:mod:`tests.support.upcluster`); the node's busybox image store is built once for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.upcluster import UpCluster, base_image_root, up_cluster


@pytest.fixture(scope="session")
def compat_image_root() -> Iterator[Path]:
    with base_image_root("cmp") as root:
        yield root


@pytest.fixture(scope="session")
def cluster(compat_image_root: Path) -> Iterator[UpCluster]:
    with up_cluster("cmp", compat_image_root, cgroup_root="kubelite-cmp{tag}/cmp{tag}",
                    up_args=["--kubelet-arg=--crash-loop-base=1"]) as cl:
        yield cl
