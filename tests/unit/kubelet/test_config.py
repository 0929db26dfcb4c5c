"""Env expansion, downward API, ConfigMap/Secret sources, QoS/resources, security context, volumes."""

from __future__ import annotations

import base64
import os
from fractions import Fraction
from pathlib import Path

import pytest

from kubelet.containerconfig import container_config, security_context
from kubelet.envvars import ContainerConfigError, Sources, expand, make_environment
from kubelet.qos import (container_resources, machine_memory, oom_score_adj, parse_quantity, pod_cgroup_parent,
                         pod_resources, qos_class)
from kubelet.volumes import atomic_write, container_mounts, setup_volumes

pytestmark = pytest.mark.unit
NO = Sources(configmaps={}, secrets={})


@pytest.mark.parametrize("value, expected", [
    ("$(A)", "a"), ("x$(A)y", "xay"), ("$$(A)", "$(A)"), ("$(B)", "$(B)"), ("$(A", "$(A"),
    ("$A", "$A"), ("$", "$"), ("$$", "$"), ("$(A)$(A)", "aa"), ("$()", "$()"), ("a$$b", "a$b"),
])
def test_expansion(value: str, expected: str) -> None:
    assert expand(value, {"A": "a"}.get) == expected


def _pod(env=None, env_from=None, resources=None):
    c = {"name": "c", "image": "busybox", "env": env or [], "envFrom": env_from or []}
    if resources:
        c["resources"] = resources
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [c]}}, c


def test_env_order_expansion_and_downward() -> None:
    p, c = _pod(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)-$(C)"},
                     {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                     {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                     {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                     {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                     {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                        "divisor": "1Mi"}}},
                     {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                                        "divisor": "1m"}}}],
                resources={"limits": {"memory": "64Mi", "cpu": "250m"}})
    env = dict(make_environment(p, c, Sources({}, {}, pod_ip="10.1.1.1")))
    assert env == {"A": "1", "B": "1-$(C)", "N": "p", "L": "web", "IP": "10.1.1.1", "NODE": "n1",
                   "MEM": "64", "CPU": "250"}


def test_env_from_configmap_and_secret() -> None:
    cm = {"data": {"K": "v", "bad-name!": "x"}}
    secret = {"data": {"PASS": base64.b64encode(b"s3cret").decode()}}
    p, c = _pod(env_from=[{"configMapRef": {"name": "cm"}, "prefix": "P_"}, {"secretRef": {"name": "s"}}],
                env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "PASS"}}},
                     {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k",
                                                                     "optional": True}}}])
    env = dict(make_environment(p, c, Sources({"cm": cm}, {"s": secret})))
    assert env == {"P_K": "v", "PASS": "s3cret", "X": "s3cret"}


def test_missing_configmap_is_config_error() -> None:
    p, c = _pod(env=[{"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}])
    with pytest.raises(ContainerConfigError, match='configmap "gone" not found'):
        make_environment(p, c, NO)
    p, c = _pod(env=[{"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}])
    with pytest.raises(ContainerConfigError, match="couldn't find key k in ConfigMap ns/cm"):
        make_environment(p, c, Sources({"cm": {"data": {}}}, {}))


@pytest.mark.parametrize("q, value", [("100m", 0.1), ("64Mi", 67108864), ("1", 1), ("1e3", 1000), ("1.5Gi", 1.5 * 2**30)])
def test_quantity(q: str, value: float) -> None:
    assert float(parse_quantity(q)) == value


def _res_pod(*resources):
    return {"metadata": {"uid": "u"}, "spec": {"containers": [
        {"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}}


def test_qos_classes_and_cgroup_parent() -> None:
    g = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class(_res_pod(g)) == "Guaranteed" and pod_cgroup_parent(_res_pod(g)) == "kubepods/podu"
    assert qos_class(_res_pod({})) == "BestEffort"
    assert pod_cgroup_parent(_res_pod({})) == "kubepods/besteffort/podu"
    b = {"requests": {"cpu": "100m"}}
    assert qos_class(_res_pod(g, b)) == "Burstable"
    assert pod_cgroup_parent(_res_pod(b)) == "kubepods/burstable/podu"


def test_linux_resources() -> None:
    r = container_resources({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "128Mi"}}})
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes) == (256, 50000, 100000, 128 * 2**20)
    r = container_resources({})
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (2, 0, 0)


def test_oom_score_adj_follows_kubernetes_policy() -> None:
    """GetContainerOOMScoreAdjust: -997 / 1000 by class; Burstable 1000 - 1000 x request / capacity in 3..999."""
    g = {"limits": {"cpu": "1", "memory": "1Gi"}}
    b = {"requests": {"memory": "1Gi"}}
    gib = Fraction(2**30)
    assert oom_score_adj(_res_pod(g), gib, 4 * 2**30) == -997
    assert oom_score_adj(_res_pod({}), Fraction(0), 4 * 2**30) == 1000
    assert oom_score_adj(_res_pod(b), gib, 4 * 2**30) == 750
    assert oom_score_adj(_res_pod(b), Fraction(0), 4 * 2**30) == 999       # asks for no memory: never 1000
    assert oom_score_adj(_res_pod(b), 8 * gib, 4 * 2**30) == 3             # asks for more than the host has
    burstable = _res_pod(b)
    want = max(3, min(999, 1000 - (1000 * 2**30) // machine_memory()))     # relative to this host's MemTotal
    assert container_resources(burstable["spec"]["containers"][0], burstable).oom_score_adj == want


def test_pod_level_resources_as_resource_config_for_pod() -> None:
    g = {"limits": {"cpu": "500m", "memory": "64Mi"}}
    b = {"requests": {"cpu": "250m"}, "limits": {"memory": "32Mi"}}
    r = pod_resources(_res_pod(g, g))            # Guaranteed: sums of requests and limits
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes) == (1024, 100000, 100000, 128 * 2**20)
    r = pod_resources(_res_pod(g, b))            # Burstable, one container without a cpu limit: no pod quota
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (768, 0, 96 * 2**20)
    r = pod_resources(_res_pod({}, {}))          # BestEffort: the minimum shares, nothing else
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (2, 0, 0)
    pod = _res_pod(b)                            # an init container asking for more than the apps: its request counts
    pod["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "16Mi"}}}]
    r = pod_resources(pod)
    assert (r.cpu_shares, r.memory_limit_in_bytes) == (1024, 32 * 2**20)


def test_security_context_pod_defaults_and_non_root() -> None:
    p = {"spec": {"securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2000}}}
    sc = security_context(p, {"securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                                                  "readOnlyRootFilesystem": True,
                                                  "allowPrivilegeEscalation": False}})
    assert sc.run_as_user == 1000 and sc.run_as_non_root and sc.supplemental_groups == (2000,)
    assert sc.capabilities.add == ("NET_ADMIN",) and sc.readonly_rootfs and sc.no_new_privs
    with pytest.raises(ContainerConfigError, match="runAsNonRoot"):
        security_context({"spec": {"securityContext": {"runAsNonRoot": True}}}, {}, image_uid=0)
    assert security_context({"spec": {}}, {"securityContext": {"privileged": True}}).privileged


def test_atomic_writer(tmp_path: Path) -> None:
    d = tmp_path / "v"
    assert atomic_write(d, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (d / "a").read_bytes() == b"1" and (d / "dir" / "b").read_bytes() == b"2"
    assert os.readlink(d / "a") == "..data/a" and (d / "..data").is_symlink()
    assert not atomic_write(d, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    old = os.readlink(d / "..data")
    assert atomic_write(d, {"a": (b"3", 0o644)})
    assert (d / "a").read_bytes() == b"3" and not (d / "dir").exists() and not (d / old).exists()


def test_volumes_and_mounts(tmp_path: Path) -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
           "spec": {"volumes": [{"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "k", "path": "f.txt"}]}},
                                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
                                {"name": "scratch", "emptyDir": {"medium": "Memory"}},
                                {"name": "info", "downwardAPI": {"items": [
                                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}],
                    "containers": [{"name": "c", "volumeMounts": [
                        {"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "scratch", "mountPath": "/tmp/x"},
                        {"name": "sec", "mountPath": "/s"}, {"name": "info", "mountPath": "/info"}]}]}}
    src = Sources({"cm": {"data": {"k": "hello"}}}, {"s": {"data": {"t": base64.b64encode(b"tok").decode()}}})
    paths, tmpfs = setup_volumes(tmp_path, pod, src)
    assert (paths["cfg"] / "f.txt").read_text() == "hello"
    assert (paths["sec"] / "t").read_bytes() == b"tok" and (os.stat(paths["sec"] / "t").st_mode & 0o777) == 0o400
    assert (paths["info"] / "name").read_text() == "p"
    assert len(tmpfs) == 1 and str(paths["scratch"]) in tmpfs[0]
    mounts = container_mounts(pod["spec"]["containers"][0], paths, pod)
    assert [(m.container_path, m.readonly) for m in mounts] == [("/etc/cfg", True), ("/tmp/x", False),
                                                                 ("/s", True), ("/info", True)]
    with pytest.raises(ContainerConfigError, match='secret "s" not found'):
        setup_volumes(tmp_path, pod, Sources({"cm": {"data": {"k": "v"}}}, {}))


def test_container_config_labels_and_args() -> None:
    p, c = _pod(env=[{"name": "MSG", "value": "hi"}])
    c["command"] = ["echo", "$(MSG)"]
    cfg = container_config(p, c, image_ref="sha256:x", attempt=2, node_name="n1", sources=NO, mounts=[],
                           init=False, termination_host_path="/tmp/t")
    assert cfg.command == ("echo", "hi") and cfg.metadata.attempt == 2
    assert cfg.labels["io.kubernetes.pod.uid"] == "u" and cfg.labels["kubelite.io/node"] == "n1"
    assert cfg.mounts[-1].container_path == "/dev/termination-log"


def test_bad_quantity_counts_as_unset() -> None:
    pod = _res_pod({"limits": {"cpu": "lots", "memory": "64Mi"}})
    assert qos_class(pod) == "Burstable"
    assert container_resources(pod["spec"]["containers"][0]).cpu_quota == 0
