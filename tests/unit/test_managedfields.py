"""Server-side apply: ownership, conflicts (FieldManagerConflict), force, removal of dropped fields."""

import pytest

from kubelite.api.errors import BadRequest, Conflict
from kubelite.api.managedfields import apply_patch, field_set, format_path, from_fields_v1, update_managed_fields
from kubelite.api.schema import for_kind

pytestmark = pytest.mark.unit


def cfg(replicas=None, image="nginx:1.25", labels=None):
    spec = {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": image}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    meta = {"name": "web"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def managers(obj):
    return {(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]}


def test_field_set_paths():
    paths = field_set(cfg(3, labels={"a": "b"}), for_kind("apps/v1", "Deployment"))
    assert ("f:spec", "f:replicas") in paths
    assert ("f:metadata", "f:labels", "f:a") in paths
    assert ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}', ".") in paths
    assert ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image") in paths
    assert not any(p[:2] == ("f:metadata", "f:name") for p in paths)


def test_create_then_reapply_same_manager_removes_dropped_fields():
    obj = apply_patch(None, cfg(3, labels={"a": "1", "b": "2"}), "kubectl")
    assert obj["spec"]["replicas"] == 3 and managers(obj) == {("kubectl", "Apply")}
    entry = obj["metadata"]["managedFields"][0]
    assert entry["fieldsType"] == "FieldsV1" and entry["apiVersion"] == "apps/v1"
    assert entry["fieldsV1"]["f:spec"]["f:replicas"] == {}
    obj = apply_patch(obj, cfg(None, labels={"a": "1"}), "kubectl")
    assert "replicas" not in obj["spec"] and obj["metadata"]["labels"] == {"a": "1"}
    obj = apply_patch(obj, cfg(None), "kubectl")
    assert "labels" not in obj["metadata"]


def test_conflict_with_other_manager_and_force():
    obj = apply_patch(None, cfg(3), "kubectl")
    with pytest.raises(Conflict) as e:
        apply_patch(obj, cfg(5), "other")
    err = e.value
    assert err.status_code == 409
    assert err.message == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    assert err.causes == [{"reason": "FieldManagerConflict", "message": 'conflict with "kubectl" using apps/v1',
                           "field": ".spec.replicas"}]
    forced = apply_patch(obj, cfg(5), "other", force=True)
    assert forced["spec"]["replicas"] == 5
    kubectl_entry = next(e for e in forced["metadata"]["managedFields"] if e["manager"] == "kubectl")
    assert "f:replicas" not in kubectl_entry["fieldsV1"]["f:spec"]


def test_same_value_is_shared_not_a_conflict():
    obj = apply_patch(None, cfg(3), "kubectl")
    obj2 = apply_patch(obj, cfg(3, image="nginx:1.25"), "other")
    assert managers(obj2) == {("kubectl", "Apply"), ("other", "Apply")}
    # kubectl drops replicas: still owned by "other", so it stays
    obj3 = apply_patch(obj2, cfg(None), "kubectl")
    assert obj3["spec"]["replicas"] == 3


def test_update_takes_ownership_then_apply_conflicts():
    obj = apply_patch(None, cfg(3), "kubectl")
    new = dict(obj, spec=dict(obj["spec"], replicas=7))
    update_managed_fields(obj, new, "kubectl-scale")
    owners = {e["manager"]: from_fields_v1(e["fieldsV1"]) for e in new["metadata"]["managedFields"]}
    assert ("f:spec", "f:replicas") in owners["kubectl-scale"]
    assert ("f:spec", "f:replicas") not in owners["kubectl"]
    # kubectl re-applies 3 → no conflict (it does not own it anymore, but value differs from kubectl-scale's)
    with pytest.raises(Conflict) as e:
        apply_patch(new, cfg(3), "kubectl")
    assert e.value.causes[0]["field"] == ".spec.replicas"
    assert 'conflict with "kubectl-scale"' in e.value.message


def test_update_on_create_owns_everything():
    obj = cfg(2)
    update_managed_fields(None, obj, "kubectl-create")
    (entry,) = obj["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl-create" and entry["operation"] == "Update"
    assert entry["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_requires_manager():
    with pytest.raises(BadRequest, match="fieldManager"):
        apply_patch(None, cfg(1), None)


def test_format_path():
    assert format_path(("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image")) == '.spec.containers[name="nginx"].image'


def test_update_with_replaced_managed_fields_takes_them():
    obj = apply_patch(None, cfg(3), "kubectl")
    new = dict(obj, metadata=dict(obj["metadata"], managedFields=[
        {"manager": "migrated", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:replicas": {}}}}]))
    update_managed_fields(obj, new, "kubectl-patch")
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["migrated"]
    cleared = dict(obj, metadata=dict(obj["metadata"], managedFields=[]))
    update_managed_fields(obj, cleared, "x")
    assert "managedFields" not in cleared["metadata"]


def test_fields_tree_equals_field_values():
    from kubelite.api.managedfields import field_values, fields_tree, to_fields_v1
    obj = cfg(3, labels={"a": "b"})
    obj["metadata"]["finalizers"] = ["x", "y"]
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    node = for_kind("apps/v1", "Deployment")
    assert fields_tree(obj, node) == to_fields_v1(set(field_values(obj, node)))


def test_kubectl_upgrades_client_side_applied_objects_without_conflicts():
    import json
    last = cfg(2)
    live = cfg(2)
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(last)}
    update_managed_fields(None, live, "kubectl-client-side-apply")
    # another manager than "kubectl" still conflicts
    with pytest.raises(Conflict):
        apply_patch(live, cfg(3, image="nginx:2"), "someone")
    out = apply_patch(live, cfg(3, image="nginx:2"), "kubectl")
    assert out["spec"]["replicas"] == 3
    assert json.loads(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]) == cfg(3, image="nginx:2")
    # a field outside the last-applied configuration still conflicts
    live2 = dict(live, spec=dict(live["spec"], paused=True))
    update_managed_fields(live, live2, "other-writer")
    with pytest.raises(Conflict) as e:
        apply_patch(live2, dict(cfg(3), spec=dict(cfg(3)["spec"], paused=False)), "kubectl")
    assert [c["field"] for c in e.value.causes] == [".spec.paused"]


def test_update_moves_changed_fields_and_drops_removed_ones():
    from kubelite.api.managedfields import from_fields_v1
    obj = cfg(2, labels={"a": "1", "b": "2"})
    update_managed_fields(None, obj, "creator")
    new = json_copy(obj)
    new["metadata"]["labels"] = {"a": "changed"}
    new["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    update_managed_fields(obj, new, "editor")
    owners = {e["manager"]: from_fields_v1(e["fieldsV1"]) for e in new["metadata"]["managedFields"]}
    assert ("f:metadata", "f:labels", "f:a") in owners["editor"]
    assert not any(p[:2] == ("f:metadata", "f:labels") for p in owners["creator"])
    side = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"side"}')
    assert side + (".",) in owners["editor"] and side + ("f:image",) in owners["editor"]
    assert ("f:spec", "f:replicas") in owners["creator"]
    # removing the container takes it out of every entry
    newer = json_copy(new)
    newer["spec"]["template"]["spec"]["containers"].pop()
    update_managed_fields(new, newer, "third")
    owners = {e["manager"]: from_fields_v1(e["fieldsV1"]) for e in newer["metadata"]["managedFields"]}
    assert not any(p[:5] == side for paths in owners.values() for p in paths)
    assert "third" not in owners  # it changed nothing it now owns


def json_copy(obj):
    import json
    return json.loads(json.dumps(obj))


def test_port_items_match_with_defaulted_protocol():
    from kubelite.api.schema import for_kind as kind_schema
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]}}
    paths = field_set(pod, kind_schema("v1", "Pod"))
    assert ("f:spec", "f:containers", 'k:{"name":"c"}', "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}', ".") in paths
