"""A whole single-node cluster for the observability tests, started the way a user starts one: ``kubelite up``
(etcd, apiserver, scheduler, controller-manager and a kubelet, each its own process) on a temp data dir,
free loopback ports, its own node name and cgroup root, and a busybox image store. Shared by the
package's tests; stopped with SIGTERM at the end, after which nothing it made may be left.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.upcluster import REPO, UpCluster, base_image_root, up_cluster, wait_for

Cluster = UpCluster
__all__ = ["REPO", "Cluster", "wait_for"]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def obs_image_root() -> Iterator[Path]:
    with base_image_root("obs") as root:
        yield root


@pytest.fixture(scope="session")
def cluster(obs_image_root: Path) -> Iterator[Cluster]:
    with up_cluster("obs", obs_image_root, cgroup_root="kubelite-obs{tag}/obs{tag}", stop_signal=signal.SIGTERM,
                    up_args=["--kubelet-arg=--crash-loop-base=1", "--kubelet-arg=-v",
                             "--controller-manager-arg=--node-monitor-grace-period=20"]) as cl:
        yield cl
