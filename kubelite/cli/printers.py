"""Output formats as kubectl prints them: server Tables (tabwriter, padding 3), yaml, json, name.

Column values come from the server (``as=Table``), as they do for kubectl; only NAMESPACE (``-A``) and
LABELS (``--show-labels``) are filled in here from each row's object metadata. A server that answers a
plain list gets kubectl's fallback NAME/AGE table.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from kubelite.api.duration import human_duration
from kubelite.api.resources import ResourceInfo


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    from datetime import datetime, timezone
    try:
        then = datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(timezone.utc) - then).total_seconds())


def cell_text(cell: Any) -> str:
    if cell is None:
        return "<none>"
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def labels_text(meta: dict[str, Any]) -> str:
    labels = meta.get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


class TablePrinter:
    """Renders server Tables like kubectl's tabwriter (min width 0, padding 3), rows possibly streamed."""

    def __init__(self, *, wide: bool = False, all_namespaces: bool = False, show_labels: bool = False,
                 no_headers: bool = False, kind_prefix: str = "", out: IO[str] | None = None) -> None:
        self.wide = wide
        self.all_namespaces = all_namespaces
        self.show_labels = show_labels
        self.no_headers = no_headers
        self.kind_prefix = kind_prefix
        self._out = out
        self.widths: list[int] = []
        self.columns: list[int] | None = None

    def _rows(self, table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
        defs = table.get("columnDefinitions") or []
        if self.columns is None:
            self.columns = [i for i, d in enumerate(defs) if self.wide or not d.get("priority")]
        headers = [str(defs[i].get("name", "")).upper() for i in self.columns]
        name_col = next((j for j, i in enumerate(self.columns) if defs[i].get("format") == "name"), 0)
        rows = []
        for row in table.get("rows") or []:
            cells = row.get("cells") or []
            texts = [cell_text(cells[i]) if i < len(cells) else "" for i in self.columns]
            meta = (row.get("object") or {}).get("metadata") or {}
            if self.kind_prefix and texts:
                texts[name_col] = f"{self.kind_prefix}/{texts[name_col]}"
            if self.all_namespaces:
                texts.insert(0, str(meta.get("namespace", "")))
            if self.show_labels:
                texts.append(labels_text(meta))
            rows.append(texts)
        if self.all_namespaces:
            headers.insert(0, "NAMESPACE")
        if self.show_labels:
            headers.append("LABELS")
        return headers, rows

    def print_table(self, table: dict[str, Any], *, header: bool = True) -> int:
        """Print a Table (header unless suppressed); returns the number of rows."""
        headers, rows = self._rows(table)
        if not rows:
            return 0
        lines = ([headers] if header and not self.no_headers else []) + rows
        for line in lines:
            if len(self.widths) < len(line):
                self.widths.extend([0] * (len(line) - len(self.widths)))
            for i, text in enumerate(line):
                self.widths[i] = max(self.widths[i], len(text))
        for line in lines:
            self._emit(line)
        return len(rows)

    @property
    def out(self) -> IO[str]:
        return self._out if self._out is not None else sys.stdout   # looked up late: tests swap sys.stdout

    def _emit(self, line: list[str]) -> None:
        parts = [text.ljust(self.widths[i] + 3) for i, text in enumerate(line[:-1])]
        parts.append(line[-1] if line else "")
        self.out.write("".join(parts).rstrip() + "\n")


def fallback_table(obj_or_list: dict[str, Any]) -> dict[str, Any]:
    """kubectl's NAME/AGE table for a server that did not answer with a Table."""
    items = obj_or_list.get("items") if "items" in obj_or_list else [obj_or_list]
    rows = []
    for item in items or []:
        meta = item.get("metadata") or {}
        rows.append({"cells": [meta.get("name", ""), age(meta.get("creationTimestamp"))],
                     "object": {"metadata": meta}})
    return {"kind": "Table", "columnDefinitions": [{"name": "Name", "format": "name"}, {"name": "Age"}],
            "rows": rows}


def as_table(data: dict[str, Any]) -> dict[str, Any]:
    return data if data.get("kind") == "Table" else fallback_table(data)


def with_kind(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    if "kind" not in obj or "apiVersion" not in obj:
        obj = {"apiVersion": info.api_version, "kind": info.kind, **obj}
    return obj


def to_yaml(obj: Any) -> str:
    """YAML as kubectl writes it: sorted keys, double quotes where quoting is needed, ``|`` blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def choose_scalar_style(self) -> Any:
            style = super().choose_scalar_style()
            return '"' if style == "'" else style

    def represent_str(dumper: yaml.SafeDumper, data: str) -> Any:
        if data in ("y", "Y", "n", "N"):     # YAML 1.1 booleans to Go's yaml, plain strings to PyYAML
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        if "\n" in data.rstrip("\n") or (data.endswith("\n") and len(data) > 1):
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", data)

    Dumper.add_representer(str, represent_str)
    return yaml.dump(obj, Dumper=Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 30)


def to_json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)


def strip_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """kubectl hides ``metadata.managedFields`` unless ``--show-managed-fields``."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
