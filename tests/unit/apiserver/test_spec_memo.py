"""The spec memos (kubelite.api.jsonmemo) give what the walks give, and copies callers may change."""

from __future__ import annotations

import copy
from typing import Any

from apiserver.registry import fieldvalidation, pods
from apiserver.registry.strategy import strategy_for
from kubelite.api import fieldpath, schema
from kubelite.api.jsonmemo import JsonMemo
from kubelite.api.resources import for_kind

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 80}]}]}}


def test_memo_is_bounded_and_keyed_by_scope_and_json() -> None:
    memo: JsonMemo[int] = JsonMemo(size=2)
    for i in range(3):
        key = memo.key({"i": i})
        assert key is not None
        memo.put("s", key, i)
    assert memo.get("s", memo.key({"i": 0}) or b"") is None          # the oldest went
    assert memo.get("s", memo.key({"i": 2}) or b"") == 2
    assert memo.get("other", memo.key({"i": 2}) or b"") is None
    assert memo.key({1: "non-str key"}) is None


def test_repeated_invalid_spec_gives_the_same_causes_each_time_as_copies() -> None:
    strategy = strategy_for(for_kind("v1", "Pod"))
    bad = copy.deepcopy(POD)
    bad["spec"]["containers"].append({"name": "c", "image": ""})
    first = strategy.validate(copy.deepcopy(bad))
    first[-1]["message"] = "changed by a caller"
    again = strategy.validate(copy.deepcopy(bad))
    direct = pods.validate_pod_spec("spec", bad["spec"])
    assert [c for c in again if c["field"].startswith("spec")] == direct
    assert any(c["reason"] == "FieldValueDuplicate" for c in direct)


def test_spec_trees_are_fresh_copies() -> None:
    node = schema.for_kind("v1", "Pod")
    one = fieldpath.fields_tree(copy.deepcopy(POD), node)
    one["f:spec"]["f:containers"].clear()
    two = fieldpath.fields_tree(copy.deepcopy(POD), node)
    assert two["f:spec"]["f:containers"] == {'k:{"name":"c"}': {".": {}, "f:name": {}, "f:image": {}, "f:ports": {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}
    assert set(two["f:spec"]) == set(fieldpath.to_fields_v1(fieldpath.field_set(POD, node))["f:spec"])


def test_unknown_field_in_a_spec_seen_clean_before_is_still_found() -> None:
    info = for_kind("v1", "Pod")
    assert fieldvalidation.check(info, copy.deepcopy(POD), "Warn")[1] == []
    odd: dict[str, Any] = copy.deepcopy(POD)
    odd["spec"]["bogus"] = 1
    cleaned, warnings = fieldvalidation.check(info, odd, "Warn")
    assert warnings == ['unknown field "spec.bogus"'] and "bogus" not in cleaned["spec"]
    assert fieldvalidation.check(info, copy.deepcopy(POD), "Warn")[1] == []

