"""apps/v1 ReplicaSets and Deployments: defaulting (apps/v1 defaults.go) and validation."""

from __future__ import annotations

from typing import Any

from apiserver.registry import pods
from apiserver.registry import validation as v
from kubelite.api.errors import forbidden_field, not_supported, required

Causes = v.Causes


def default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pods.default_pod_spec(template.get("spec"))


def default_replicaset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("minReadySeconds", 0)
        default_template(spec)


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            if isinstance(ru, dict):
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_template(spec)


def _int_or_percent(field: str, value: Any) -> tuple[Causes, float | None]:
    """IntOrString: a non-negative int or "N%"; returns the value (percent as a fraction of 100)."""
    if value is None:
        return [], None
    if isinstance(value, int) and not isinstance(value, bool):
        return v.non_negative(field, value), float(value)
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        pct = int(value[:-1])
        if pct > 100:
            return [v.invalid_value(field, value, "must not be greater than 100%")], None
        return [], float(pct)
    return [v.invalid_value(field, value, "a valid percent string must be a numeric string followed by an ending "
                          "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")], None


def _validate_template_and_selector(spec: dict[str, Any], kind: str) -> Causes:
    causes: Causes = []
    causes += v.non_negative("spec.replicas", spec.get("replicas"))
    causes += v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = spec.get("selector")
    if selector is None:
        causes.append(required("spec.selector"))
    else:
        causes += v.label_selector("spec.selector", selector)
        if isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(v.invalid_value("spec.selector", selector, f"empty selector is invalid for {kind}"))
    template = spec.get("template")
    if not isinstance(template, dict):
        causes.append(required("spec.template"))
        return causes
    tmeta = template.get("metadata") or {}
    tlabels = tmeta.get("labels") or {}
    causes += v.labels("spec.template.metadata.labels", tmeta.get("labels"))
    causes += v.annotations("spec.template.metadata.annotations", tmeta.get("annotations"))
    if isinstance(selector, dict) and (selector.get("matchLabels") or selector.get("matchExpressions")) and \
            isinstance(tlabels, dict) and not v.selector_matches(selector, tlabels):
        causes.append(v.invalid_value("spec.template.metadata.labels", tlabels,
                                    "`selector` does not match template `labels`"))
    tspec = template.get("spec")
    causes += pods.validate_pod_spec("spec.template.spec", tspec)
    if isinstance(tspec, dict) and tspec.get("restartPolicy") not in (None, "Always"):
        causes.append(not_supported("spec.template.spec.restartPolicy", tspec["restartPolicy"], ["Always"]))
    if isinstance(tspec, dict) and tspec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden_field("spec.template.spec.activeDeadlineSeconds",
                                      "activeDeadlineSeconds in ReplicaSet is not Supported"))
    return causes


def validate_replicaset(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    return _validate_template_and_selector(spec, "replicaset")


def validate_deployment(obj: dict[str, Any]) -> Causes:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes = _validate_template_and_selector(spec, "deployment")
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type") if isinstance(strategy, dict) else None
    if stype not in (None, "RollingUpdate", "Recreate"):
        causes.append(not_supported("spec.strategy.type", stype, ["Recreate", "RollingUpdate"]))
    ru = strategy.get("rollingUpdate") if isinstance(strategy, dict) else None
    if stype == "Recreate" and ru is not None:
        causes.append(forbidden_field("spec.strategy.rollingUpdate",
                                      "may not be specified when strategy `type` is 'Recreate'"))
    if stype == "RollingUpdate" and isinstance(ru, dict):
        e1, unavailable = _int_or_percent("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"))
        e2, surge = _int_or_percent("spec.strategy.rollingUpdate.maxSurge", ru.get("maxSurge"))
        causes += e1 + e2
        if unavailable == 0 and surge == 0:
            causes.append(v.invalid_value("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                                        "may not be 0 when `maxSurge` is 0"))
    causes += v.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    causes += v.positive("spec.progressDeadlineSeconds", pds)
    mrs = spec.get("minReadySeconds")
    if isinstance(pds, int) and isinstance(mrs, int) and pds <= mrs:
        causes.append(v.invalid_value("spec.progressDeadlineSeconds", pds,
                                    "must be greater than minReadySeconds"))
    return causes


def validate_selector_update(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    """apps/v1 selectors are immutable."""
    sel_new = (new.get("spec") or {}).get("selector")
    sel_old = (old.get("spec") or {}).get("selector")
    if sel_new != sel_old:
        return [v.invalid_value("spec.selector", sel_new, v.IMMUTABLE)]
    return []
