"""JSON merge patch, JSON patch (RFC 6902 appendix A), strategic merge patch and kubectl's three-way merge."""

import pytest

from kubelite.api.errors import BadRequest, Invalid
from kubelite.api.patch import json_merge_patch, json_patch, strategic_merge_patch, three_way_merge_patch

pytestmark = pytest.mark.unit


# --- RFC 7386 (examples from appendix A) ---
@pytest.mark.parametrize("target,patch,result", [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_json_merge_patch(target, patch, result):
    assert json_merge_patch(target, patch) == result


# --- RFC 6902 appendix A ---
@pytest.mark.parametrize("doc,ops,result", [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]}, [{"op": "test", "path": "/baz", "value": "qux"},
                                           {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
    ({"spec": {"template": {"x": 1}}, "metadata": {"annotations": {"a": "b"}}},
     [{"op": "replace", "path": "/spec/template", "value": {"y": 2}},
      {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "2"}}],
     {"spec": {"template": {"y": 2}}, "metadata": {"annotations": {"deployment.kubernetes.io/revision": "2"}}}),
])
def test_json_patch(doc, ops, result):
    assert json_patch(doc, ops) == result


@pytest.mark.parametrize("doc,ops,error", [
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], Invalid),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], Invalid),
    ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}], Invalid),
    ({"foo": "bar"}, [{"op": "replace", "path": "/nope", "value": 1}], Invalid),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/5", "value": 1}], Invalid),
    ({"foo": 1}, [{"op": "frob", "path": "/foo"}], BadRequest),
    ({"foo": 1}, {"op": "add"}, BadRequest),
    ({"foo": 1}, [{"op": "add", "path": "/x"}], BadRequest),
    ({"foo": 1}, [{"op": "test", "path": "/foo", "value": True}], Invalid),
])
def test_json_patch_errors(doc, ops, error):
    with pytest.raises(error):
        json_patch(doc, ops)
    assert doc  # untouched


def deploy(containers, **spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": containers}}, **spec}}


# --- strategic merge patch ---
def test_smp_merges_containers_by_name():
    live = deploy([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])
    out = strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:2"}]}}}})
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "a:1"


def test_smp_kubectl_apply_body_with_directives():
    live = deploy([{"name": "a", "image": "a", "env": [{"name": "EX", "value": "1"}, {"name": "EY", "value": "2"}]},
                   {"name": "b", "image": "b"}],
                  strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    live["metadata"]["labels"] = {"tier": "x", "app": "web"}
    patch = {"metadata": {"labels": {"tier": None}},
             "spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
                      "template": {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                            "containers": [{"$setElementOrder/env": [{"name": "EX"}],
                                                            "env": [{"$patch": "delete", "name": "EY"}], "name": "a"},
                                                           {"$patch": "delete", "name": "b"}]}}}}
    out = strategic_merge_patch(live, patch)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "a", "env": [{"name": "EX", "value": "1"}]}]


def test_smp_set_element_order_and_new_items():
    live = deploy([{"name": "a"}, {"name": "b"}, {"name": "c"}])
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "d"}, {"name": "a"}],
                                            "containers": [{"name": "d", "image": "d"}]}}}}
    names = [c["name"] for c in strategic_merge_patch(live, patch)["spec"]["template"]["spec"]["containers"]]
    assert names == ["b", "c", "d", "a"]  # k8s mergeSortedSlice: server-only "b" keeps its place before "c"


def test_smp_replace_list_and_map_directives():
    live = deploy([{"name": "a"}, {"name": "b"}])
    out = strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}}})
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "z"}]
    out = strategic_merge_patch(live, {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"a": "b"}}}}})
    assert out["spec"]["template"] == {"metadata": {"labels": {"a": "b"}}}
    out = strategic_merge_patch(live, {"spec": {"template": {"$patch": "delete"}}})
    assert out["spec"]["template"] == {}  # as Kubernetes: the map is emptied


def test_smp_primitive_merge_lists_and_atomic_lists():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]},
           "spec": {"containers": [{"name": "c", "args": ["1", "2"], "ports": [{"containerPort": 80}]}],
                    "tolerations": [{"key": "x"}]}}
    out = strategic_merge_patch(pod, {"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
                                      "spec": {"tolerations": [{"key": "y"}],
                                               "containers": [{"name": "c", "args": ["3"],
                                                               "ports": [{"containerPort": 81}]}]}})
    assert out["metadata"]["finalizers"] == ["c", "b"]  # k8s: patch items first unless the server orders them
    assert out["spec"]["tolerations"] == [{"key": "y"}]
    assert out["spec"]["containers"][0]["args"] == ["3"]
    assert out["spec"]["containers"][0]["ports"] == [{"containerPort": 81}, {"containerPort": 80}]


def test_smp_conditions_by_type_and_owner_refs_by_uid():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]},
           "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}
    out = strategic_merge_patch(pod, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]},
                                      "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["2", "1"]
    assert out["status"]["conditions"][0] == {"type": "Ready", "status": "True"}


def test_smp_errors():
    with pytest.raises(BadRequest):
        strategic_merge_patch(deploy([]), {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    with pytest.raises(BadRequest):
        strategic_merge_patch(deploy([]), ["not", "a", "map"])


# --- three-way merge (kubectl apply's client side) ---
def test_three_way_matches_kubectl_observed_body():
    original = deploy([{"name": "a", "image": "a", "env": [{"name": "EX", "value": "1"}, {"name": "EY", "value": "2"}]},
                       {"name": "b", "image": "b"}],
                      strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    original["metadata"]["labels"] = {"tier": "x", "app": "web"}
    modified = deploy([{"name": "a", "image": "a", "env": [{"name": "EX", "value": "1"}]}], strategy={"type": "Recreate"})
    modified["metadata"]["labels"] = {"app": "web"}
    current = strategic_merge_patch(original, {"spec": {"replicas": 1, "template": {"spec": {"dnsPolicy": "ClusterFirst"}}}})
    patch = three_way_merge_patch(original, modified, current)
    assert patch == {
        "metadata": {"labels": {"tier": None}},
        "spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
                 "template": {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                       "containers": [{"$setElementOrder/env": [{"name": "EX"}],
                                                       "env": [{"$patch": "delete", "name": "EY"}], "name": "a"},
                                                      {"$patch": "delete", "name": "b"}]}}}}
    out = strategic_merge_patch(current, patch)
    assert out["spec"]["replicas"] == 1 and out["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert out["spec"]["template"]["spec"]["containers"] == modified["spec"]["template"]["spec"]["containers"]


def test_three_way_image_change_and_unchanged():
    original = deploy([{"name": "nginx", "image": "nginx:1.25"}], replicas=2)
    modified = deploy([{"name": "nginx", "image": "nginx:1.26"}], replicas=3)
    current = deploy([{"name": "nginx", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent"}], replicas=2)
    assert three_way_merge_patch(original, modified, current) == {
        "spec": {"replicas": 3, "template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                                                      "containers": [{"image": "nginx:1.26", "name": "nginx"}]}}}}
    assert three_way_merge_patch(modified, modified, strategic_merge_patch(current, {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}})) == {}
