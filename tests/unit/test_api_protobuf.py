"""Kubernetes protobuf bodies decoded to the objects their JSON would be, from bytes kubectl 1.32 sent."""

from __future__ import annotations

import pytest

from kubelite.api import protobuf

pytestmark = pytest.mark.unit

# `kubectl create namespace pbtest` (kubectl 1.32.4, its -v=9 hex dump)
NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d65737061636512 1e0a160a0670627465737412001a0022002a00320038004200"
    "12001a020a001a002200".replace(" ", ""))
# `kubectl create deployment web --image=busybox:1.35 --replicas=2 --port=80 -- sleep 3600`
DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a076170707 32f7631120a4465706c6f796d656e7412cf010a1f0a0377656212001a0022002a00320038"
    "00420 05a0a0a036170701203776562129d01080212 0c0a0a0a03617070120377656 21a82010a1c0a0012001a0022002a"
    "00320038004200 5a0a0a0361707012037765621262124 40a0762757379626f78120c62757379626f783a312e33351a05"
    "736c6565701a04333630302a00320a0a001000185022002a0042006a00720080010088010090010 0a201001a00320042"
    "004a00520058006000680082010 08a01009a0100c20100220 20a00280038001a0c0800100018002000280038001a0022"
    "00".replace(" ", ""))


def test_namespace_from_kubectl() -> None:
    assert protobuf.decode(NAMESPACE) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pbtest"},
                                          "spec": {}, "status": {}}


def test_deployment_from_kubectl_keeps_what_go_json_would() -> None:
    obj = protobuf.decode(DEPLOYMENT)
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]) == ("apps/v1", "Deployment",
                                                                 {"name": "web", "labels": {"app": "web"}})
    spec = obj["spec"]
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["strategy"] == {}                      # a non-pointer struct: {} as in Go's JSON
    assert "minReadySeconds" not in spec and "paused" not in spec      # zero non-pointers: omitempty
    pod = spec["template"]["spec"]
    assert pod == {"containers": [{"name": "busybox", "image": "busybox:1.35", "command": ["sleep", "3600"],
                                   "ports": [{"containerPort": 80}], "resources": {}}]}
    assert spec["template"]["metadata"] == {"labels": {"app": "web"}}  # zero creationTimestamp left out


def test_special_types() -> None:
    quantity = "k8s.io.apimachinery.pkg.api.resource.Quantity"
    assert protobuf._message(memoryview(b"\x0a\x04500m"), quantity) == "500m"
    ios = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
    assert protobuf._message(memoryview(b"\x08\x01\x1a\x0325%"), ios) == "25%"
    assert protobuf._message(memoryview(b"\x08\x00\x10\x03"), ios) == 3
    time = "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
    assert protobuf._message(memoryview(b"\x08\x80\xce\xae\xba\x06"), time) == "2024-12-01T00:00:00Z"
    negative = b"\x08" + b"\xff" * 9 + b"\x01"        # int64 -1 as a 10-byte varint
    assert protobuf._message(memoryview(negative), "k8s.io.api.apps.v1.DeploymentSpec") == {"replicas": -1}


@pytest.mark.parametrize("body, message", [
    (b'{"kind": "Pod"}', "magic number"),
    (b"k8s\x00\x0a\x0f\x0a\x08batch/v1\x12\x03Job", "no protobuf message known for batch/v1, Kind=Job"),
    (b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x03\xf8\x07\x01", "unknown field 127 in Namespace"),
    (b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x09\x0a", "truncated"),
])
def test_bad_bodies_are_refused_not_half_decoded(body: bytes, message: str) -> None:
    with pytest.raises(protobuf.ProtobufError, match=message):
        protobuf.decode(body)
