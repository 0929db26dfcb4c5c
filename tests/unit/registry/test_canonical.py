"""Quantities come back in Kubernetes' canonical form on every write."""

import pytest

from apiserver.registry.canonical import canonicalize_quantities
from apiserver.registry.strategy import strategy_for
from kubelite.api.resources import DEPLOYMENTS, NODES, PODS

pytestmark = pytest.mark.unit


def test_pod_resources_and_overhead():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "x", "resources": {
               "limits": {"cpu": "1000m", "memory": "1024Ki"}, "requests": {"cpu": 0.5, "memory": "bogus"}}}],
               "initContainers": [{"name": "i", "image": "x", "resources": {"limits": {"cpu": "2000m"}}}],
               "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1.5Gi"}}]}}
    s = strategy_for(PODS)
    s.prepare_for_create(pod)
    res = pod["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"cpu": "1", "memory": "1Mi"}, "requests": {"cpu": "500m", "memory": "bogus"}}
    assert pod["spec"]["initContainers"][0]["resources"] == {"limits": {"cpu": "2"}, "requests": {"cpu": "2"}}
    assert pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] == "1536Mi"
    assert any(c["field"] == "spec.containers[0].resources.requests[memory]" for c in s.validate(pod))


def test_template_and_node_status():
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "0.25"}}}]}}}}
    canonicalize_quantities(d, "apps/v1", "Deployment")
    assert d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "250m"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "status": {"capacity": {"cpu": 2, "memory": "2048Mi", "pods": "110"}}}
    old = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}
    strategy_for(NODES).prepare_for_status_update(node, old)
    assert node["status"]["capacity"] == {"cpu": "2", "memory": "2Gi", "pods": "110"}
    assert node["status"]["allocatable"] == node["status"]["capacity"]
    assert DEPLOYMENTS.kind == "Deployment"
