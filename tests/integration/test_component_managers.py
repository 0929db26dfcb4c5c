"""Each component names itself in its User-Agent, so the apiserver records it as the field manager of the
writes it makes without ``fieldManager`` (as Kubernetes shows ``kube-controller-manager`` or ``kubelet``)."""

from __future__ import annotations

import pytest

from kubelite.client import Client

pytestmark = pytest.mark.integration


async def test_user_agent_prefix_is_the_field_manager(apiserver_url: str) -> None:
    async with Client.from_url(apiserver_url, user_agent="kube-controller-manager/v1.32.4-kubelite") as c:
        cm = await c.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": "owned"}, "data": {"a": "1"}}, "default")
    managers = [m["manager"] for m in cm["metadata"].get("managedFields") or []]
    assert managers == ["kube-controller-manager"], managers
    async with Client.from_url(apiserver_url) as c:        # the library's default still names kubelite
        cm = await c.patch("configmaps", "owned", {"data": {"b": "2"}}, "default")
    assert {m["manager"] for m in cm["metadata"]["managedFields"]} == {"kube-controller-manager", "kubelite"}
