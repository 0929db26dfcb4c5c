"""Shared fixtures: a real etcd for the session, a fresh apiserver per test on its own key prefix."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support import cluster


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[cluster.EtcdServer]:
    """One throwaway etcd for the whole session (tests isolate themselves by key prefix)."""
    with cluster.etcd_server() as server:
        yield server


@pytest.fixture
def apiserver_proc(etcd_server: cluster.EtcdServer) -> Iterator[cluster.ApiServer]:
    """A fresh ``python -m apiserver`` on its own etcd prefix; the handle can stop/start it."""
    with cluster.apiserver(etcd_server.url) as server:
        yield server


@pytest.fixture
def apiserver_url(apiserver_proc: cluster.ApiServer) -> str:
    """Base URL (``http://127.0.0.1:PORT``) of a fresh apiserver that sees no other test's objects."""
    return apiserver_proc.url
