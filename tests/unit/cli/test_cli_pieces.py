"""Pure pieces of the CLI: tabwriters, durations, manifests, type/name parsing, the merge fallback."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from kubelite.cli import common, printers
from kubelite.cli.apply import last_applied, merge_three_way
from kubelite.cli.describe_layout import tabwrite, toleration_text
from kubelite.cli.main import COMMANDS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def test_table_printer_like_kubectl() -> None:
    table = {"kind": "Table",
             "columnDefinitions": [{"name": "Name", "format": "name"}, {"name": "Ready"}, {"name": "IP", "priority": 1}],
             "rows": [{"cells": ["web-1", "1/1", "10.0.0.1"], "object": {"metadata": {"namespace": "ns",
                                                                                       "labels": {"b": "2", "a": "1"}}}},
                      {"cells": ["w", "0/1", None], "object": {"metadata": {"namespace": "default"}}}]}
    out = io.StringIO()
    printers.TablePrinter(out=out).print_table(table)
    assert out.getvalue() == "NAME    READY\nweb-1   1/1\nw       0/1\n"
    out = io.StringIO()
    printers.TablePrinter(wide=True, all_namespaces=True, show_labels=True, out=out).print_table(table)
    assert out.getvalue().splitlines() == ["NAMESPACE   NAME    READY   IP         LABELS",
                                           "ns          web-1   1/1     10.0.0.1   a=1,b=2",
                                           "default     w       0/1     <none>     <none>"]
    out = io.StringIO()
    assert printers.TablePrinter(out=out).print_table({**table, "rows": []}) == 0 and out.getvalue() == ""


def test_go_tabwriter_blocks() -> None:
    text = "Name:\tx\nNamespace:\tdefault\nContainers:\n  c:\n    Image:\tbusybox\nEvents:\t<none>\n"
    assert tabwrite(text) == ("Name:       x\nNamespace:  default\nContainers:\n  c:\n    Image:  busybox\n"
                              "Events:     <none>\n")


def test_tolerations_text() -> None:
    assert toleration_text({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                            "tolerationSeconds": 300}) == "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s"
    assert toleration_text({"operator": "Exists"}) == "op=Exists"


def test_read_manifests_dirs_multidoc_lists_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n---\n"
                                     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    (tmp_path / "b.json").write_text('{"apiVersion": "v1", "kind": "List", "items": ['
                                     '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]}')
    (tmp_path / "notes.txt").write_text("ignored")
    got = common.read_manifests([str(tmp_path)])
    assert [(m.info.kind, m.obj["metadata"]["name"]) for m in got] == [("Pod", "a"), ("Deployment", "d"),
                                                                       ("ConfigMap", "c")]
    monkeypatch.setattr("sys.stdin", io.StringIO("apiVersion: v1\nkind: Node\nmetadata: {name: n}\n"))
    assert common.read_manifests(["-"])[0].source == "STDIN"
    (tmp_path / "bad.yaml").write_text("a: b\n  c: d\n")
    with pytest.raises(common.CliError, match=r"bad.yaml: error converting YAML to JSON: yaml: line 2: "):
        common.read_manifests([str(tmp_path / "bad.yaml")])
    (tmp_path / "bad.json").write_text('{"a": }')
    with pytest.raises(common.CliError, match="line 1"):
        common.read_manifests([str(tmp_path / "bad.json")])
    with pytest.raises(common.CliError, match="does not exist"):
        common.read_manifests([str(tmp_path / "missing.yaml")])


def test_split_type_names() -> None:
    pairs = common.split_type_names(["po", "a", "b"])
    assert [(i.resource, n) for i, n in pairs] == [("pods", "a"), ("pods", "b")]
    assert [(i.resource, n) for i, n in common.split_type_names(["deploy/x", "rs/y"])] == [
        ("deployments", "x"), ("replicasets", "y")]
    assert [i.resource for i, _ in common.split_type_names(["all"])] == ["pods", "deployments", "replicasets"]
    with pytest.raises(common.CliError, match="doesn't have a resource type"):
        common.split_type_names(["widgets"])
    assert common.resource_name(pairs[0][0]) == "pod"


def test_merge_patch_fallback_and_last_applied() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}}
    modified = {"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"x": 2}}
    current = {"metadata": {"labels": {"a": "1", "b": "2", "other": "kept"}}, "spec": {"x": 1, "y": 5}}
    assert merge_three_way(original, modified, current) == {"metadata": {"labels": {"c": "3", "b": None}},
                                                            "spec": {"x": 2}}
    assert merge_three_way(modified, modified, {**current, "metadata": {"labels": {"a": "1", "c": "3"}},
                                                "spec": {"x": 2}}) == {}
    text = last_applied({"kind": "Pod", "metadata": {"name": "p", "annotations": {common.LAST_APPLIED: "old"}}})
    assert text == '{"kind":"Pod","metadata":{"annotations":{},"name":"p"}}\n'


def test_yaml_like_go() -> None:
    assert printers.to_yaml({"b": "y", "a": "2026-01-01T00:00:00Z", "c": "x\ny\n", "d": "1"}) == \
        'a: "2026-01-01T00:00:00Z"\nb: "y"\nc: |\n  x\n  y\nd: "1"\n'


def test_dispatch_table_targets_exist_and_errors_are_kubectl_like() -> None:
    for name, target in COMMANDS.items():
        module, func = target.split(":")
        path = ROOT / (module.replace(".", "/") + ".py")
        if path.exists():
            assert f"def {func}(" in path.read_text(), f"{name} -> {target}"
    r = subprocess.run([sys.executable, "-m", "kubelite", "get", "pods", "-s", "http://127.0.0.1:1"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("The connection to the server 127.0.0.1:1 was refused")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("argv,message", [
    (["patch", "pod", "x", "-p", "{bad"], 'error: unable to parse "{bad": yaml: line 1: '),
    (["delete", "pod", "x", "--cascade=bogus"], "error: invalid cascade value (bogus)."),
    (["get", "pods", "-o", "table"], 'error: unable to match a printer suitable for the output format "table"'),
    (["label", "pod", "x"], "error: at least one label update is required"),
    (["get"], "error: you must specify the type of resource to get."),
])
def test_bad_flags_are_one_line_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from kubelite.cli.main import main

    assert main([*argv, "-s", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
