"""REST paths map to resources, namespaces, names and subresources as kube-apiserver's do."""

import pytest

from apiserver.handlers.dispatch import parse
from kubelite.api import errors
from kubelite.api.resources import DEPLOYMENTS, NAMESPACES, NODES, PODS


@pytest.mark.parametrize("group,version,tail,expected", [
    ("", "v1", "namespaces/default/pods", (PODS, "default", None, None, False)),
    ("", "v1", "namespaces/default/pods/p/status", (PODS, "default", "p", "status", False)),
    ("", "v1", "pods", (PODS, None, None, None, False)),
    ("", "v1", "namespaces/default", (NAMESPACES, None, "default", None, False)),
    ("", "v1", "namespaces/default/status", (NAMESPACES, None, "default", "status", False)),
    ("", "v1", "namespaces/default/finalize", (NAMESPACES, None, "default", "finalize", False)),
    ("", "v1", "namespaces", (NAMESPACES, None, None, None, False)),
    ("", "v1", "nodes/n1", (NODES, None, "n1", None, False)),
    ("", "v1", "watch/namespaces/default/pods", (PODS, "default", None, None, True)),
    ("apps", "v1", "namespaces/x/deployments/web/scale", (DEPLOYMENTS, "x", "web", "scale", False)),
])
def test_paths(group: str, version: str, tail: str, expected: tuple) -> None:
    t = parse(group, version, tail)
    assert (t.info, t.namespace, t.name, t.subresource, t.watch_path) == expected


@pytest.mark.parametrize("group,version,tail", [
    ("", "v1", "services"), ("", "v1", "namespaces/default/services"), ("apps", "v2", "deployments"),
    ("", "v1", "namespaces/default/nodes/n1"), ("", "v1", "pods/p"), ("", "v1", "namespaces/default/pods/p/bogus"),
    ("", "v1", "namespaces/default/pods/p/status/extra"), ("", "v1", "namespaces//pods"),
])
def test_unknown_paths_are_404(group: str, version: str, tail: str) -> None:
    with pytest.raises(errors.NotFound):
        parse(group, version, tail)
