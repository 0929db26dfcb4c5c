"""metrics.k8s.io on a live cluster: ``kubelite top`` and the real ``kubectl top`` against a CPU burner show
about its CPU limit, and ``top node`` shows the node with its share of allocatable."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.observability.conftest import Cluster, wait_for

pytestmark = pytest.mark.e2e
LIMIT_M = 300


def _burner() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burner", "labels": {"app": "burner"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "burn", "image": "busybox:1.35", "command": ["sh", "-c", "while :; do :; done"],
                "resources": {"requests": {"cpu": "100m", "memory": "16Mi"},
                              "limits": {"cpu": f"{LIMIT_M}m", "memory": "32Mi"}}}]}}


def _cpu_of(output: str, name: str) -> int | None:
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return int(cells[1].rstrip("m"))
    return None


def test_top_shows_the_cpu_limit(cluster: Cluster) -> None:
    with cluster.client() as c:
        c.create("pods", _burner(), "default")
    try:
        cluster.wait_running("burner", 90)
        near = lambda v: v is not None and 0.6 * LIMIT_M <= v <= 1.15 * LIMIT_M  # noqa: E731

        def kubelite_top() -> str | None:
            out = cluster.kubelite("top", "pod", "-l", "app=burner").stdout
            return out if near(_cpu_of(out, "burner")) else None
        out = wait_for(kubelite_top, 60, f"kubelite top near {LIMIT_M}m", interval=0.5)
        assert out.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
        assert re.search(r"burner\s+\d+m\s+\d+Mi", out)
        per_container = cluster.kubelite("top", "pod", "burner", "--containers").stdout
        assert re.search(r"burner\s+burn\s+\d+m\s+\d+Mi", per_container)

        def kubectl_top() -> str | None:
            p = cluster.kubectl("top", "pod", "burner", check=False)
            return p.stdout if p.returncode == 0 and near(_cpu_of(p.stdout, "burner")) else None
        wait_for(kubectl_top, 60, f"kubectl top near {LIMIT_M}m", interval=0.5)

        node = cluster.kubectl("top", "node").stdout
        assert re.search(rf"{cluster.node}\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%", node), node
        mine = cluster.kubelite("top", "node", cluster.node).stdout
        assert re.search(rf"{cluster.node}\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%", mine), mine
    finally:
        cluster.delete_pod("burner")
