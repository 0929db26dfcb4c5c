"""One ``kubelite up`` cluster per module, run the way README tells a user to, with the node's defaults
(cgroup root ``kubelite/<node>``, an empty image store the kubelet fills itself with the offline busybox).
The tests stop it (SIGINT, as Ctrl-C), crash it (SIGKILL) and start it again on the same data dir.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.upcluster import REPO, UpCluster, up_cluster

__all__ = ["REPO", "UpCluster"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[UpCluster]:
    with up_cluster("acc") as cl:
        yield cl
