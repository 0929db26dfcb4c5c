"""Pod IPs: an httpGet probe reaches the pod on its IP; two kubelets on one host are two nodes whose pods
reach each other by IP (the kubelet hands the runtime node-infra's NodeNetwork for its pod CIDR)."""

from __future__ import annotations

import random

import pytest

from tests.e2e.kubelet.conftest import Env, conditions, container, pod_manifest

pytestmark = pytest.mark.e2e


def _cidrs() -> tuple[str, str]:
    n = random.randrange(100, 199, 2)
    return f"10.244.{n}.0/24", f"10.244.{n + 1}.0/24"


async def test_http_probe_on_pod_ip_and_two_nodes_reach_each_other(kenv: Env) -> None:
    cidr_a, cidr_b = _cidrs()
    a = kenv.node("--pod-cidr", cidr_a)
    b = kenv.node("--pod-cidr", cidr_b)
    kenv.uses_bridge = True
    await kenv.ready(a)
    await kenv.ready(b)
    web = container("c", "echo hello-from-a > /tmp/index.html; httpd -f -p 8080 -h /tmp",
                    readinessProbe={"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1})
    await kenv.client.create("pods", pod_manifest("web", a.name, web), "default")
    s = await kenv.wait_status("web", lambda s: conditions(s).get("Ready") == "True", 30, "Ready by httpGet")
    ip = s["podIP"]
    assert ip and s["podIPs"] == [{"ip": ip}]
    fetch = container("c", f"until wget -q -O - http://{ip}:8080/index.html; do sleep 0.2; done; sleep 1000")
    await kenv.client.create("pods", pod_manifest("fetch", b.name, fetch), "default")
    s2 = await kenv.wait_status("fetch", lambda s: s.get("phase") == "Running", 30, "Running")
    assert s2["podIP"] != ip
    from tests.e2e.kubelet.test_pods import _logs
    assert "hello-from-a" in await _logs(kenv, b, "fetch", "", want="hello-from-a")
