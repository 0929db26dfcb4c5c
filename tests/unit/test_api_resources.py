"""The resource table resolves names the way kubectl does."""

import pytest

from kubelite.api import resources


def test_lookup_by_every_name() -> None:
    for name in ("deploy", "deployments", "deployment", "Deployment", "deployments.apps"):
        assert resources.lookup(name) is resources.DEPLOYMENTS
    assert resources.lookup("po").path("default", "x", "status") == "/api/v1/namespaces/default/pods/x/status"
    assert resources.NODES.path(None, "n1") == "/api/v1/nodes/n1"


def test_unknown_kind_has_kubectls_wording() -> None:
    with pytest.raises(resources.UnknownResource, match='no matches for kind "Service" in version "v1"'):
        resources.for_kind("v1", "Service")
