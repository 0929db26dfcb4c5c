"""Node registration, status reports only on change, the Lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelet.nodestatus import NodeStatusManager, host_facts, node_status
from tests.unit.kubelet.fakeclient import FakeClient

pytestmark = pytest.mark.unit


def test_node_status_shape(tmp_path: Path) -> None:
    facts = host_facts(tmp_path)
    s = node_status(facts, max_pods=110, host_ip="127.0.0.1", hostname="n1", port=10250, ready=True)
    assert s["capacity"]["pods"] == "110" and int(s["capacity"]["cpu"]) >= 1 and s["capacity"]["memory"].endswith("Ki")
    assert s["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "n1"}]
    assert s["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    conds = {c["type"]: c for c in s["conditions"]}
    assert conds["Ready"]["reason"] == "KubeletReady" and conds["Ready"]["message"] == "kubelet is posting ready status"
    assert conds["MemoryPressure"]["reason"] == "KubeletHasSufficientMemory"
    assert s["nodeInfo"]["kubeletVersion"] == "v1.32.4-kubelite"
    assert s["nodeInfo"]["containerRuntimeVersion"] == "kubelite://0.1"
    down = node_status(facts, max_pods=110, host_ip="127.0.0.1", hostname="n1", port=1, ready=False,
                       not_ready_message="PLEG is not healthy", old=s)
    ready = next(c for c in down["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "KubeletNotReady"
    mem = next(c for c in down["conditions"] if c["type"] == "MemoryPressure")
    assert mem["lastTransitionTime"] == conds["MemoryPressure"]["lastTransitionTime"]


async def test_register_adopt_report_and_lease(tmp_path: Path) -> None:
    client = FakeClient()
    m = NodeStatusManager(client, node_name="n1", root_dir=tmp_path, host_ip="127.0.0.1", port=10250,
                          pod_cidr="10.244.3.0/24")
    await m.register()
    node = client.objects[("nodes", "", "n1")]
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["spec"]["podCIDR"] == "10.244.3.0/24" and node["status"]["conditions"]
    writes = len([a for a in client.actions if a[0] == "patch"])
    assert not await m.report()                         # nothing changed: no write
    assert len([a for a in client.actions if a[0] == "patch"]) == writes
    m.port = 10251
    assert await m.report()
    # a second kubelet start adopts the Node
    m2 = NodeStatusManager(client, node_name="n1", root_dir=tmp_path, host_ip="127.0.0.1", port=10250)
    await m2.register()
    assert m2.effective_pod_cidr == "10.244.3.0/24"
    await m.renew_lease()
    lease = client.objects[("leases", "kube-node-lease", "n1")]
    assert lease["spec"]["holderIdentity"] == "n1" and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = lease["spec"]["renewTime"]
    await m.renew_lease()
    lease = client.objects[("leases", "kube-node-lease", "n1")]
    assert lease["metadata"]["resourceVersion"] == "2" and lease["spec"]["renewTime"] >= first
