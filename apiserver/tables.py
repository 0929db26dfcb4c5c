"""``meta.k8s.io/v1 Table`` responses with kubectl's columns per kind (placeholder: Name and Age)."""

from __future__ import annotations

from typing import Any

from kubelite.api.resources import ResourceInfo


def to_table(info: ResourceInfo, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
             list_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render ``objects`` of ``info`` as a Table; ``include_object`` is None | Metadata | Object."""
    rows = []
    for obj in objects:
        meta = obj.get("metadata", {})
        row: dict[str, Any] = {"cells": [meta.get("name", ""), meta.get("creationTimestamp", "")]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
        rows.append(row)
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0},
        ],
        "rows": rows,
    }
