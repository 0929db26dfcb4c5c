"""A live single-node cluster (``kubelite up``: etcd, apiserver, scheduler, controller-manager and a kubelet
running real containers) for the kubectl compat matrix; the same fixture the observability e2e tests use."""

from __future__ import annotations

from tests.e2e.observability.conftest import cluster, obs_image_root  # noqa: F401
