"""kubectl's JSONPath subset for -o jsonpath / custom-columns."""

from __future__ import annotations

import pytest

from kubelite.cli.common import CliError
from kubelite.cli.jsonpath import custom_columns, evaluate, render

pytestmark = pytest.mark.unit

DOC = {"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
     "spec": {"containers": [{"image": "i1"}, {"image": "i2"}]}, "status": {"phase": "Running"}},
    {"metadata": {"name": "b"}, "spec": {"containers": [{"image": "i3"}]}, "status": {"phase": "Pending"}},
]}


def test_paths() -> None:
    assert evaluate(DOC, ".items[*].metadata.name") == ["a", "b"]
    assert evaluate(DOC, "$.items[-1].metadata.name") == ["b"]
    assert evaluate(DOC, ".items[0:1].metadata.name") == ["a"]
    assert evaluate(DOC, "..image") == ["i1", "i2", "i3"]
    assert evaluate(DOC, ".items[0].metadata.labels['app.kubernetes.io/name']") == ["x"]
    assert evaluate(DOC, '.items[?(@.status.phase=="Pending")].metadata.name') == ["b"]
    assert evaluate(DOC, ".items[5].metadata") == [] and evaluate(DOC, ".nope") == []


def test_templates() -> None:
    assert render("{.items[*].metadata.name}", DOC) == "a b"
    assert render('{range .items[*]}{.metadata.name}:{.status.phase}{"\\n"}{end}', DOC) == "a:Running\nb:Pending\n"
    assert render("{.items[0].spec}", DOC) == '{"containers":[{"image":"i1"},{"image":"i2"}]}'
    assert render("name={.items[1].metadata.name}", DOC) == "name=b"
    with pytest.raises(CliError):
        render("{.items[0", DOC)


def test_custom_columns() -> None:
    out = custom_columns("NAME:.metadata.name,IMAGES:.spec.containers[*].image,X:.metadata.labels.x", DOC["items"])
    assert out == "NAME   IMAGES   X\na      i1,i2    <none>\nb      i3       <none>\n"
    with pytest.raises(CliError):
        custom_columns("NAME", DOC["items"])
