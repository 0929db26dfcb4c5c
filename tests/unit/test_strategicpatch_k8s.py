"""Kubernetes' own strategic merge patch test cases (patch_test.go, MergeItem type), table-driven."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelite.api.errors import BadRequest
from kubelite.api.strategicpatch import strategic_merge_patch, three_way_merge_patch

pytestmark = pytest.mark.unit
CASES = yaml.safe_load((Path(__file__).parent / "data" / "strategicpatch_cases.yaml").read_text())


def _merge_item_schema() -> dict[str, Any]:
    """MergeItem's struct tags (patchStrategy/patchMergeKey) as a JSON-schema node, recursive like the Go type."""
    item: dict[str, Any] = {"type": "object", "properties": {}}
    retain: dict[str, Any] = {"type": "object", "properties": {}}
    scalar = {"type": "string"}

    def merging(items: Any, strategy: str = "merge", key: str | None = "name") -> dict[str, Any]:
        node = {"type": "array", "items": items, "x-kubernetes-patch-strategy": strategy}
        if key:
            node["x-kubernetes-patch-merge-key"] = key
        return node

    retain["properties"].update({
        "name": scalar, "value": scalar, "other": scalar,
        "simpleMap": {"type": "object", "additionalProperties": scalar},
        "mergingIntList": merging({"type": "integer"}, key=None),
        "mergingList": merging(item), "nonMergingList": {"type": "array", "items": item}})
    item["properties"].update({
        "name": scalar, "value": scalar, "other": scalar,
        "mergingList": merging(item), "nonMergingList": {"type": "array", "items": item},
        "mergingIntList": merging({"type": "integer"}, key=None),
        "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
        "mergeItemPtr": merging(item),
        "simpleMap": {"type": "object", "additionalProperties": scalar},
        "replacingItem": {"x-kubernetes-patch-strategy": "replace"},
        "retainKeysMap": dict(retain, **{"x-kubernetes-patch-strategy": "retainKeys"}),
        "retainKeysMergingList": merging(item, "merge,retainKeys"),
    })
    return item


SCHEMA = _merge_item_schema()


@pytest.mark.parametrize("case", CASES["custom"] + CASES["create"], ids=lambda c: c["description"])
def test_two_way_patch_application(case: dict[str, Any]) -> None:
    original = case.get("original") or {}
    if case.get("error"):
        with pytest.raises(BadRequest, match=case["error"]):
            strategic_merge_patch(original, case["twoWay"], schema_node=SCHEMA)
        return
    expected = case.get("twoWayResult", case["modified"])
    assert strategic_merge_patch(original, case["twoWay"], schema_node=SCHEMA) == expected


@pytest.mark.parametrize("case", [c for c in CASES["create"] if "threeWay" in c], ids=lambda c: c["description"])
def test_three_way_patch_and_result(case: dict[str, Any]) -> None:
    patch = three_way_merge_patch(case.get("original"), case["modified"], case["current"], schema_node=SCHEMA)
    assert patch == case["threeWay"]
    assert strategic_merge_patch(case["current"], patch, schema_node=SCHEMA) == case["result"]
