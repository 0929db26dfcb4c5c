"""Server-side Tables: kubectl's columns and cells as kube-apiserver's printers compute them."""

from datetime import datetime, timedelta, timezone

import pytest

from apiserver.tables import format_selector, human_duration, to_table
from kubelite.api.resources import (CONFIGMAPS, DEPLOYMENTS, EVENTS, LEASES, NAMESPACES, NODES, PODS, REPLICASETS,
                                    RUNTIMECLASSES, SECRETS, lookup)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw):
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (95, "95s"), (119, "119s"), (120, "2m"), (303, "5m3s"), (600, "10m"),
    (47 * 60, "47m"), (179 * 60, "179m"), (3 * 3600 + 4 * 60, "3h4m"), (5 * 3600, "5h"), (20 * 3600, "20h"),
    (3 * 86400 + 4 * 3600, "3d4h"), (3 * 86400, "3d"), (45 * 86400, "45d"), ((3 * 365 + 10) * 86400, "3y10d"),
    (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def pod(status=None, deleting=False, **spec):
    p = {"metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(minutes=5, seconds=2),
                      "labels": {"a": "b"}},
         "spec": {"containers": [{"name": "a"}, {"name": "b"}], **spec}, "status": status or {"phase": "Pending"}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = ago(seconds=1)
    return p


def cells(info, obj):
    return to_table(info, [obj], now=NOW)["rows"][0]["cells"]


def running(name, ready=True, restarts=0, finished=None):
    cs = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(minutes=1)}}}
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": finished}}
    return cs


def test_pod_columns_and_pending():
    table = to_table(PODS, [pod()], now=NOW)
    cols = [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]
    assert cols == [("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
                    ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
                    ("Readiness Gates", "string", 1)]
    assert table["columnDefinitions"][0]["format"] == "name" and table["columnDefinitions"][0]["description"]
    assert table["rows"][0]["cells"] == ["p", "0/2", "Pending", "0", "5m2s", "<none>", "<none>", "<none>", "<none>"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["rows"][0]["object"]["metadata"]["labels"] == {"a": "b"}


@pytest.mark.parametrize("status,deleting,expected", [
    ({"phase": "Pending", "containerStatuses": [
        {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0}]}, False, "ContainerCreating"),
    ({"phase": "Running", "containerStatuses": [
        {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 3}]}, False, "CrashLoopBackOff"),
    ({"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}, False, "Completed"),
    ({"phase": "Running", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 2}}}]}, False, "ExitCode:2"),
    ({"phase": "Running", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}, running("b")],
      "conditions": [{"type": "Ready", "status": "False"}]}, False, "NotReady"),
    ({"phase": "Running"}, True, "Terminating"),
    ({"phase": "Succeeded"}, True, "Succeeded"),
    ({"phase": "Failed", "reason": "Evicted"}, False, "Evicted"),
])
def test_pod_status_column(status, deleting, expected):
    assert cells(PODS, pod(status, deleting))[2] == expected


def test_pod_init_containers():
    p = pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "i2", "state": {"running": {}}}]}, initContainers=[{"name": "i1"}, {"name": "i2"}])
    assert cells(PODS, p)[2] == "Init:1/2"
    p = pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 2}]},
        initContainers=[{"name": "i1"}])
    assert cells(PODS, p)[2:4] == ["Init:CrashLoopBackOff", "2"]
    p = pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 3}}}]}, initContainers=[{"name": "i1"}])
    assert cells(PODS, p)[2] == "Init:ExitCode:3"


def test_pod_ready_restarts_wide():
    p = pod({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}], "nominatedNodeName": "",
             "containerStatuses": [running("a", restarts=3, finished=ago(minutes=5)), running("b", ready=False)],
             "conditions": [{"type": "gate1", "status": "True"}]},
            nodeName="node1", readinessGates=[{"conditionType": "gate1"}, {"conditionType": "gate2"}])
    assert cells(PODS, p) == ["p", "1/2", "Running", "3 (5m ago)", "5m2s", "10.0.0.5", "node1", "<none>", "1/2"]


def test_pod_completed_row_condition_and_include_object():
    t = to_table(PODS, [pod({"phase": "Succeeded"})], include_object="None", now=NOW)
    assert "object" not in t["rows"][0]
    assert t["rows"][0]["conditions"][0]["type"] == "Completed"
    full = pod()
    t = to_table(PODS, [full], include_object="Object", list_meta={"resourceVersion": "7"}, now=NOW)
    assert t["rows"][0]["object"] is full and t["metadata"] == {"resourceVersion": "7"}


def workload(kind, status):
    return {"metadata": {"name": "web", "creationTimestamp": ago(hours=3, minutes=4)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                                                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
                     "template": {"spec": {"containers": [{"name": "n", "image": "nginx"}, {"name": "s", "image": "busybox"}]}}},
            "status": status}


def test_replicaset_and_deployment():
    rs = cells(REPLICASETS, workload("ReplicaSet", {"replicas": 2, "readyReplicas": 1}))
    assert rs == ["web", 3, 2, 1, "3h4m", "n,s", "nginx,busybox", "app=web,tier in (a,b)"]
    d = cells(DEPLOYMENTS, workload("Deployment", {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}))
    assert d == ["web", "2/3", 3, 2, "3h4m", "n,s", "nginx,busybox", "app=web,tier in (a,b)"]
    cols = to_table(DEPLOYMENTS, [], now=NOW)["columnDefinitions"]
    assert [c["name"] for c in cols] == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert [c["type"] for c in to_table(REPLICASETS, [], now=NOW)["columnDefinitions"]][1:4] == ["integer"] * 3


def test_format_selector():
    assert format_selector(None) == "<none>" and format_selector({}) == "<none>"
    assert format_selector({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"},
                                                 {"key": "a", "operator": "Exists"}]}) == "a,!x"


def test_node():
    node = {"metadata": {"name": "node1", "creationTimestamp": ago(days=3, hours=4),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.1.1.1"}, {"type": "Hostname", "address": "n"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.4-kubelite", "osImage": "Debian", "kernelVersion": "6.1",
                                    "containerRuntimeVersion": "kubelite://0.1"}}}
    assert cells(NODES, node) == ["node1", "Ready,SchedulingDisabled", "control-plane,worker", "3d4h", "v1.32.4-kubelite",
                                  "10.1.1.1", "<none>", "Debian", "6.1", "kubelite://0.1"]
    node["status"] = {"conditions": [{"type": "Ready", "status": "Unknown"}]}
    node["spec"] = {}
    node["metadata"]["labels"] = {}
    assert cells(NODES, node)[1:3] == ["NotReady", "<none>"]
    assert cells(NODES, {"metadata": {"name": "x"}})[1] == "Unknown"


def test_event():
    ev = {"metadata": {"name": "p.1"}, "type": "Normal", "reason": "Started", "message": " Started container nginx\n",
          "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{nginx}"},
          "source": {"component": "kubelet", "host": "node1"}, "count": 2,
          "firstTimestamp": ago(minutes=20), "lastTimestamp": ago(seconds=30)}
    assert cells(EVENTS, ev) == ["30s", "Normal", "Started", "pod/p", "spec.containers{nginx}", "kubelet, node1",
                                 "Started container nginx", "20m", 2, "p.1"]
    cols = to_table(EVENTS, [], now=NOW)["columnDefinitions"]
    assert [c["name"] for c in cols if c["priority"] == 0] == ["Last Seen", "Type", "Reason", "Object", "Message"]
    ev2 = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"}, "eventTime": ago(seconds=5),
           "reportingComponent": "ctl"}
    assert cells(EVENTS, ev2)[:4] == ["5s", "", "", "node"] and cells(EVENTS, ev2)[5] == "ctl" and cells(EVENTS, ev2)[8] == 1


def test_small_kinds():
    meta = {"name": "x", "creationTimestamp": ago(seconds=10)}
    assert cells(NAMESPACES, {"metadata": meta, "status": {"phase": "Active"}}) == ["x", "Active", "10s"]
    assert cells(CONFIGMAPS, {"metadata": meta, "data": {"a": "1"}, "binaryData": {"b": ""}}) == ["x", 2, "10s"]
    assert cells(SECRETS, {"metadata": meta, "type": "Opaque", "data": {"a": "MQ=="}}) == ["x", "Opaque", 1, "10s"]
    assert cells(LEASES, {"metadata": meta, "spec": {"holderIdentity": "node1"}}) == ["x", "node1", "10s"]
    assert cells(RUNTIMECLASSES, {"metadata": meta, "handler": "runc"}) == ["x", "runc", "10s"]
    assert cells(NAMESPACES, {"metadata": {"name": "y"}})[2] == "<unknown>"


def test_unknown_resource_gets_name_age():
    info = lookup("pods")
    assert to_table(info, [], now=NOW)["rows"] == []
