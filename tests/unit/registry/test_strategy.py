"""Per-kind defaulting and validation with Kubernetes' rules and messages."""

import copy

import pytest

from apiserver.registry.strategy import strategy_for
from kubelite.api.errors import BadRequest, invalid
from kubelite.api.resources import (CONFIGMAPS, DEPLOYMENTS, EVENTS, LEASES, NAMESPACES, NODES, PODS, REPLICASETS,
                                    RUNTIMECLASSES, SECRETS)

pytestmark = pytest.mark.unit


def pod(name="p", **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def created(info, obj):
    s = strategy_for(info)
    s.prepare_for_create(obj)
    return obj, s.validate(obj)


def fields(causes):
    return [c["field"] for c in causes]


def test_pod_defaults():
    obj, causes = created(PODS, pod(containers=[
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        {"name": "b", "image": "nginx:1.25"}, {"name": "c", "image": "reg:5000/x:latest"},
        {"name": "d", "image": "x@sha256:abc"}]))
    assert causes == []
    spec = obj["spec"]
    assert spec["restartPolicy"] == "Always" and spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst" and spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {} and spec["enableServiceLinks"] is True
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert [c["imagePullPolicy"] for c in spec["containers"]] == ["Always", "IfNotPresent", "Always", "IfNotPresent"]
    a = spec["containers"][0]
    assert a["terminationMessagePath"] == "/dev/termination-log" and a["terminationMessagePolicy"] == "File"
    assert a["ports"][0]["protocol"] == "TCP"
    assert a["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    assert obj["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    assert "generation" not in obj["metadata"]


def test_pod_qos_and_existing_toleration():
    obj, _ = created(PODS, pod(containers=[{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
                               tolerations=[{"operator": "Exists"}]))
    assert obj["status"]["qosClass"] == "Guaranteed"
    assert obj["spec"]["tolerations"] == [{"operator": "Exists"}]
    obj, _ = created(PODS, pod())
    assert obj["status"]["qosClass"] == "BestEffort"


def test_pod_validation_messages():
    obj = pod(restartPolicy="Sometimes", containers=[
        {"name": "c", "image": "x", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2", "memory": "lots"}}},
        {"name": "c"}, {"name": "Bad_Name", "image": "x", "ports": [{"containerPort": 0}]}])
    obj["metadata"]["name"] = "Bad"
    obj["metadata"]["labels"] = {"ok": "x" * 64}
    obj, causes = created(PODS, obj)
    by_field = {c["field"]: c["message"] for c in causes}
    assert by_field["metadata.name"].startswith('Invalid value: "Bad": a lowercase RFC 1123 subdomain')
    assert by_field["metadata.labels"] == f'Invalid value: "{"x" * 64}": must be no more than 63 characters'
    assert by_field["spec.restartPolicy"] == ('Unsupported value: "Sometimes": supported values: '
                                              '"Always", "OnFailure", "Never"')
    assert by_field["spec.containers[0].resources.requests"] == 'Invalid value: "2": must be less than or equal to cpu limit of 1'
    assert by_field["spec.containers[0].resources.requests[memory]"].startswith('Invalid value: "lots": quantities must match')
    assert by_field["spec.containers[1].name"] == 'Duplicate value: "c"'
    assert by_field["spec.containers[1].image"] == "Required value"
    assert by_field["spec.containers[2].name"].startswith('Invalid value: "Bad_Name": a lowercase RFC 1123 label')
    assert by_field["spec.containers[2].ports[0].containerPort"] == "Invalid value: 0: must be between 1 and 65535, inclusive"
    err = invalid("Pod", "Bad", causes)
    assert err.status_code == 422 and err.message.startswith('Pod "Bad" is invalid: [')


def test_pod_required_fields_and_generate_name():
    obj, causes = created(PODS, {"metadata": {"namespace": "default"}, "spec": {}})
    assert fields(causes) == ["metadata.name", "spec.containers"]
    assert causes[0]["message"] == "Required value: name or generateName is required"
    obj, causes = created(PODS, {"metadata": {"generateName": "web-", "namespace": "default"},
                                 "spec": {"containers": [{"name": "c", "image": "x"}]}})
    assert causes == []


def test_pod_probe_and_volume_mount_validation():
    obj, causes = created(PODS, pod(containers=[{"name": "c", "image": "x", "livenessProbe": {"periodSeconds": 5},
                                                 "volumeMounts": [{"name": "nope", "mountPath": "/d"}]}]))
    by_field = {c["field"]: c["message"] for c in causes}
    assert by_field["spec.containers[0].livenessProbe"] == "Required value: must specify a handler type"
    assert by_field["spec.containers[0].volumeMounts[0].name"] == 'Not found: "nope"'
    obj, causes = created(PODS, pod(containers=[{"name": "c", "image": "x", "readinessProbe": {"httpGet": {"port": 80}}}]))
    assert causes == [] and obj["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] == 10


def test_pod_update_rules():
    s = strategy_for(PODS)
    old, _ = created(PODS, pod(activeDeadlineSeconds=100))
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:2"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"].append({"key": "k", "operator": "Exists"})
    new["status"] = {"phase": "Running"}
    s.prepare_for_update(new, old)
    assert s.validate_update(new, old) == []
    assert new["status"] == old["status"]
    bad = copy.deepcopy(old)
    bad["spec"]["restartPolicy"] = "Never"
    s.prepare_for_update(bad, old)
    causes = s.validate_update(bad, old)
    assert causes[0]["field"] == "spec" and causes[0]["reason"] == "FieldValueForbidden"
    assert causes[0]["message"].startswith("Forbidden: pod updates may not change fields other than `spec.containers[*].image`")
    bad = copy.deepcopy(new)
    bad["spec"]["tolerations"] = [t for t in bad["spec"]["tolerations"] if t.get("key") != "k"]
    s.prepare_for_update(bad, new)
    assert "spec.tolerations" in fields(s.validate_update(bad, new))
    bad = copy.deepcopy(old)
    bad["metadata"]["name"] = "other"
    assert "metadata.name" in fields(s.validate_update(bad, old))


def test_status_update_keeps_spec_and_labels():
    s = strategy_for(PODS)
    old, _ = created(PODS, pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "evil"
    new["metadata"]["labels"] = {"x": "y"}
    new["status"] = {"phase": "Running"}
    s.prepare_for_status_update(new, old)
    assert new["spec"] == old["spec"] and "labels" not in new["metadata"] and new["status"]["phase"] == "Running"


def deploy(**spec):
    base = {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": base}


def test_deployment_defaults_generation_and_status():
    obj, causes = created(DEPLOYMENTS, deploy())
    assert causes == []
    spec = obj["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert "tolerations" not in spec["template"]["spec"]  # admission defaults are for pods only
    assert obj["metadata"]["generation"] == 1 and obj["status"] == {}
    s = strategy_for(DEPLOYMENTS)
    new = copy.deepcopy(obj)
    new["metadata"]["labels"] = {"a": "b"}
    new["status"] = {"replicas": 5}
    s.prepare_for_update(new, obj)
    assert new["metadata"]["generation"] == 1 and new["status"] == {}
    new2 = copy.deepcopy(new)
    new2["spec"]["replicas"] = 3
    s.prepare_for_update(new2, new)
    assert new2["metadata"]["generation"] == 2
    st = copy.deepcopy(new2)
    st["status"] = {"observedGeneration": 2}
    st["spec"]["replicas"] = 9
    s.prepare_for_status_update(st, new2)
    assert st["metadata"]["generation"] == 2 and st["spec"]["replicas"] == 3


def test_deployment_validation():
    d = deploy(replicas=-1, strategy={"type": "Recreate", "rollingUpdate": {}})
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    _, causes = created(DEPLOYMENTS, d)
    by_field = {c["field"]: c["message"] for c in causes}
    assert by_field["spec.replicas"] == "Invalid value: -1: must be greater than or equal to 0"
    assert "`selector` does not match template `labels`" in by_field["spec.template.metadata.labels"]
    assert by_field["spec.template.spec.restartPolicy"] == 'Unsupported value: "Never": supported values: "Always"'
    assert by_field["spec.strategy.rollingUpdate"] == "Forbidden: may not be specified when strategy `type` is 'Recreate'"
    d = deploy()
    del d["spec"]["selector"]
    _, causes = created(DEPLOYMENTS, d)
    assert "spec.selector" in fields(causes)
    _, causes = created(DEPLOYMENTS, deploy(strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}))
    assert fields(causes) == ["spec.strategy.rollingUpdate.maxUnavailable"]


def test_selector_immutable_for_rs_and_deploy():
    for info in (DEPLOYMENTS, REPLICASETS):
        old = deploy()
        old["kind"] = info.kind
        old, causes = created(info, old)
        assert causes == []
        new = copy.deepcopy(old)
        new["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
        new["spec"]["template"]["metadata"]["labels"]["x"] = "y"
        s = strategy_for(info)
        s.prepare_for_update(new, old)
        assert [c for c in s.validate_update(new, old) if c["field"] == "spec.selector"][0]["message"].endswith(
            "field is immutable")


def test_replicaset_defaults():
    rs = deploy()
    rs["kind"] = "ReplicaSet"
    obj, causes = created(REPLICASETS, rs)
    assert causes == [] and obj["spec"]["replicas"] == 1 and obj["status"] == {"replicas": 0}


def test_namespace_node_and_small_kinds():
    ns, causes = created(NAMESPACES, {"metadata": {"name": "team-a"}})
    assert causes == [] and ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    _, causes = created(NAMESPACES, {"metadata": {"name": "a.b"}})
    assert fields(causes) == ["metadata.name"]
    _, causes = created(NAMESPACES, {"metadata": {"name": "x", "namespace": "y"}})
    assert fields(causes) == ["metadata.namespace"]
    node, causes = created(NODES, {"metadata": {"name": "node1"}, "status": {"capacity": {"cpu": "2"}},
                                   "spec": {"taints": [{"key": "k", "effect": "Bogus"}]}})
    assert fields(causes) == ["spec.taints[0].effect"] and node["status"]["capacity"] == {"cpu": "2"}
    _, causes = created(EVENTS, {"metadata": {"name": "e.1", "namespace": "default"},
                                 "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}})
    assert fields(causes) == ["involvedObject.namespace"]
    _, causes = created(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "default"}, "data": {"bad key": "v", "ok": "v"}})
    assert fields(causes) == ["data"]
    _, causes = created(LEASES, {"metadata": {"name": "node1", "namespace": "kube-node-lease"},
                                 "spec": {"leaseDurationSeconds": 0}})
    assert fields(causes) == ["spec.leaseDurationSeconds"]
    _, causes = created(RUNTIMECLASSES, {"metadata": {"name": "runc"}})
    assert causes == [{"reason": "FieldValueRequired", "message": "Required value", "field": "handler"}]
    _, causes = created(RUNTIMECLASSES, {"metadata": {"name": "runc"}, "handler": "Run_C"})
    assert fields(causes) == ["handler"]


def test_secret_defaults_and_base64():
    sec, causes = created(SECRETS, {"metadata": {"name": "s", "namespace": "default"}, "data": {"a": "aGk="},
                                    "stringData": {"b": "there"}})
    assert causes == [] and sec["type"] == "Opaque" and sec["data"] == {"a": "aGk=", "b": "dGhlcmU="}
    assert "stringData" not in sec
    with pytest.raises(BadRequest, match="illegal base64"):
        created(SECRETS, {"metadata": {"name": "s", "namespace": "default"}, "data": {"a": "!!"}})
    s = strategy_for(SECRETS)
    old, _ = created(SECRETS, {"metadata": {"name": "s", "namespace": "default"}, "immutable": True, "data": {"a": "aGk="}})
    new = copy.deepcopy(old)
    new["data"]["a"] = "eW8="
    new["type"] = "x"
    s.prepare_for_update(new, old)
    assert set(fields(s.validate_update(new, old))) == {"data", "type"}


def test_annotations_and_label_keys():
    obj = pod()
    obj["metadata"]["labels"] = {"example.com/app": "ok", "bad/key/x": "v", "-bad": "v"}
    obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "x" * 300000}
    _, causes = created(PODS, obj)
    msgs = [c["message"] for c in causes]
    assert sum(1 for c in causes if c["field"] == "metadata.labels") == 2
    assert "Too long: must have at most 262144 bytes" in msgs


def test_namespace_label_status_kept_on_update():
    ns, _ = created(NAMESPACES, {"metadata": {"name": "team-b", "labels": {"x": "y"}}})
    assert ns["metadata"]["labels"] == {"x": "y", "kubernetes.io/metadata.name": "team-b"}
    terminating = copy.deepcopy(ns)
    terminating["status"] = {"phase": "Terminating"}
    new = copy.deepcopy(terminating)
    new["metadata"]["labels"] = {"z": "1"}
    new["spec"] = {"finalizers": []}
    s = strategy_for(NAMESPACES)
    s.prepare_for_update(new, terminating)
    assert new["status"] == {"phase": "Terminating"} and new["spec"] == {"finalizers": ["kubernetes"]}
    assert new["metadata"]["labels"] == {"z": "1", "kubernetes.io/metadata.name": "team-b"}


def test_node_allocatable_defaults_to_capacity():
    node, _ = created(NODES, {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2", "pods": "110"}}})
    assert node["status"]["allocatable"] == {"cpu": "2", "pods": "110"}


def test_priority_classes_and_host_network_ports():
    obj, _ = created(PODS, pod(priorityClassName="system-node-critical", hostNetwork=True,
                               containers=[{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]))
    assert obj["spec"]["priority"] == 2000001000
    assert obj["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080
    from kubelite.api.errors import Forbidden
    with pytest.raises(Forbidden, match="no PriorityClass with name gold was found"):
        created(PODS, pod(priorityClassName="gold"))


def test_env_sources_and_volume_types():
    obj, causes = created(PODS, pod(
        containers=[{"name": "c", "image": "x", "env": [
            {"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "B", "valueFrom": {}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}, "secretKeyRef": {"key": "k"}}},
            {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cm"}}},
            {"name": "E", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}],
        volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}, {"name": "w", "hostPath": {}}]))
    by_field = {}
    for c in causes:
        by_field.setdefault(c["field"], []).append(c["message"])
    assert by_field["spec.containers[0].env[0].valueFrom"] == ['Invalid value: "": may not be specified when `value` is not empty']
    assert "must specify one of" in by_field["spec.containers[0].env[1].valueFrom"][0]
    assert "more than one field" in by_field["spec.containers[0].env[2].valueFrom"][0]
    assert by_field["spec.containers[0].env[3].valueFrom.configMapKeyRef.key"] == ["Required value"]
    assert "spec.containers[0].env[4].valueFrom" not in by_field
    assert obj["spec"]["containers"][0]["env"][4]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert by_field["spec.volumes[0].hostPath"] == ["Forbidden: may not specify more than 1 volume type"]
    assert by_field["spec.volumes[1].hostPath.path"] == ["Required value"]


def test_causes_name_their_fields_after_the_same_strings_were_valid():
    """The validity of label keys/values, DNS labels and quantities is remembered and field paths
    are formatted only for a cause: an invalid value after valid ones still names its field."""
    good = pod("ok", containers=[{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}],
                                  "resources": {"requests": {"cpu": "10m"}}}])
    good["metadata"]["labels"] = {"app": "web"}
    assert created(PODS, good)[1] == []
    bad = pod("bad", containers=[{"name": "C_", "image": "busybox", "env": [{"name": "A", "value": "1"},
                                                                             {"name": "1=x", "value": "2"}],
                                  "resources": {"requests": {"cpu": "-1", "memory": "16Mi"}}}])
    bad["metadata"]["labels"] = {"app": "web", "bad key!": "web", "tier": "-x"}
    bad["metadata"]["annotations"] = {"app": "x", "/no": "y"}
    causes = created(PODS, bad)[1]
    assert sorted(fields(causes)) == sorted([
        "metadata.labels", "metadata.labels", "metadata.annotations", "spec.containers[0].name",
        "spec.containers[0].env[1].name", "spec.containers[0].resources.requests[cpu]"])
