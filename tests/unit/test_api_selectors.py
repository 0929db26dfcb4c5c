"""Label and field selectors parse and match as Kubernetes does."""

import pytest

from kubelite.api.selectors import (SelectorError, field_labels, label_selector_from_dict, object_fields,
                                    parse_field_selector, parse_label_selector, selector_to_string)


@pytest.mark.parametrize("selector,labels,expected", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app in (web, db)", {"app": "db"}, True),
    ("app notin (web)", {"app": "web"}, False),
    ("app notin (web)", {}, True),
    ("tier", {"tier": ""}, True),
    ("!tier", {"tier": "x"}, False),
    ("app=web,tier in (a,b),!canary", {"app": "web", "tier": "b"}, True),
    ("n>3", {"n": "4"}, True),
    ("", {"anything": "x"}, True),
])
def test_label_selector_matching(selector: str, labels: dict, expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["app in web", "app in ()", "a b", "-bad=x", "a=b c", "a in (x"])
def test_bad_label_selectors(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_label_selector_dict_form() -> None:
    sel = label_selector_from_dict({"matchLabels": {"app": "web"},
                                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]},
                                                         {"key": "canary", "operator": "DoesNotExist"}]})
    assert sel.matches({"app": "web", "tier": "a"}) and not sel.matches({"app": "web", "tier": "a", "canary": "1"})
    assert not label_selector_from_dict(None).matches({})
    assert label_selector_from_dict({}).matches({"x": "y"})
    assert selector_to_string({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"
    with pytest.raises(SelectorError):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Near"}]})


def test_field_selectors() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "n1"},
           "status": {"phase": "Running"}}
    fields = object_fields("pods", pod)
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Succeeded", field_labels("pods"))
    assert sel.matches(fields) and sel.exact("spec.nodeName") == "n1"
    assert not parse_field_selector("metadata.name==q").matches(fields)
    with pytest.raises(SelectorError, match="field label not supported: spec.foo"):
        parse_field_selector("spec.foo=1", field_labels("pods"))
    ev = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet"}}
    assert parse_field_selector("involvedObject.kind=Pod,source=kubelet").matches(object_fields("events", ev))
    assert object_fields("nodes", {"metadata": {"name": "n"}})["spec.unschedulable"] == "false"
