"""Pods and pod templates: defaulting (core/v1 defaults.go + admission defaults) and validation.

``default_pod_spec`` / ``validate_pod_spec`` also serve the templates of ReplicaSets and Deployments.
"""

from __future__ import annotations

from typing import Any

from apiserver.registry import validation as v
from kubelite.api.errors import Forbidden, forbidden_field, not_supported, required

Causes = v.Causes
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
DEFAULT_TOLERATIONS = (("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 300))
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")


def _image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or no tag (digests count as a tag), else IfNotPresent."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        probe.setdefault(key, value)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    image = c.get("image")
    if isinstance(image, str) and image:
        c.setdefault("imagePullPolicy", _image_pull_policy(image))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    res = c.setdefault("resources", {})
    if isinstance(res, dict) and isinstance(res.get("limits"), dict):
        requests = res.setdefault("requests", {})
        if isinstance(requests, dict):
            for name, limit in res["limits"].items():
                requests.setdefault(name, limit)
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in c.get("env") or []:
        ref = env.get("valueFrom", {}).get("fieldRef") if isinstance(env, dict) and isinstance(
            env.get("valueFrom"), dict) else None
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(key))


def default_pod_spec(spec: Any) -> None:
    """SetDefaults_PodSpec + containers + volumes (also for templates)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            _default_container(c)
            if spec.get("hostNetwork") and isinstance(c, dict):
                for port in c.get("ports") or []:
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        if set(vol) <= {"name"}:
            vol["emptyDir"] = {}
        for key in ("configMap", "secret"):
            if isinstance(vol.get(key), dict):
                vol[key].setdefault("defaultMode", 420)


def default_pod(pod: dict[str, Any]) -> None:
    """Pod defaults, admission defaults (tolerations, priority) and the initial status."""
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    if not isinstance(spec, dict):
        return
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    class_name = spec.get("priorityClassName")
    if class_name:
        if class_name not in SYSTEM_PRIORITY_CLASSES:
            name = (pod.get("metadata") or {}).get("name") or ""
            raise Forbidden(f'pods "{name}" is forbidden: no PriorityClass with name {class_name} was found',
                            details={"name": name, "kind": "pods"})
        spec.setdefault("priority", SYSTEM_PRIORITY_CLASSES[class_name])
    spec.setdefault("priority", 0)
    tolerations = spec.setdefault("tolerations", [])
    if isinstance(tolerations, list):
        for key, seconds in DEFAULT_TOLERATIONS:
            if not any(isinstance(t, dict) and (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
                       and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": seconds})


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, from cpu/memory requests and limits (kubelet qos.GetPodQOS)."""
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = {k: x for k, x in (res.get("requests") or {}).items() if k in ("cpu", "memory")}
        lim = {k: x for k, x in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        any_set = any_set or bool(req) or bool(lim)
        if set(lim) != {"cpu", "memory"} or any(str(req.get(k, lim[k])) != str(lim[k]) for k in lim):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _validate_resources(field: str, res: Any) -> Causes:
    if res is None:
        return []
    if not isinstance(res, dict):
        return [v.invalid_value(field, res, "must be an object")]
    causes: Causes = []
    values: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for kind in ("limits", "requests"):
        for name, raw in (res.get(kind) or {}).items():
            value = v.valid_quantity(raw)
            if value is None:
                errs, value = v.quantity_value(f"{field}.{kind}[{name}]", raw)
                causes += errs
            if value is not None:
                values[kind][name] = value
    for name, req in values["requests"].items():
        lim = values["limits"].get(name)
        if lim is not None and req > lim:
            causes.append(v.invalid_value(f"{field}.requests", res["requests"][name],
                                        f"must be less than or equal to {name} limit of {res['limits'][name]}"))
    return causes


def _validate_probe(field: str, probe: Any, liveness: bool) -> Causes:
    if probe is None:
        return []
    if not isinstance(probe, dict):
        return [v.invalid_value(field, probe, "must be an object")]
    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(k) is not None]
    causes: Causes = []
    if not handlers:
        causes.append(required(f"{field}") | {"message": "Required value: must specify a handler type"})
    elif len(handlers) > 1:
        causes.append(forbidden_field(f"{field}.{handlers[1]}", "may not specify more than 1 handler type"))
    causes += v.non_negative(f"{field}.initialDelaySeconds", probe.get("initialDelaySeconds"))
    for key in ("timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        causes += v.non_negative(f"{field}.{key}", probe.get(key))
    if liveness and probe.get("successThreshold") not in (None, 1):
        causes.append(v.invalid_value(f"{field}.successThreshold", probe.get("successThreshold"), "must be 1"))
    return causes


ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")


def _validate_env_source(field: str, env: Any) -> Causes:
    """An env var has ``value`` or exactly one ``valueFrom`` source."""
    if not isinstance(env, dict) or env.get("valueFrom") is None:
        return []
    causes: Causes = []
    if env.get("value"):
        causes.append(v.invalid_value(f"{field}.valueFrom", "", "may not be specified when `value` is not empty"))
    source = env["valueFrom"] if isinstance(env["valueFrom"], dict) else {}
    given = [k for k in ENV_SOURCES if source.get(k) is not None]
    if not given:
        causes.append(v.invalid_value(f"{field}.valueFrom", "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                      "`configMapKeyRef` or `secretKeyRef`"))
    elif len(given) > 1:
        causes.append(v.invalid_value(f"{field}.valueFrom", "", "may not have more than one field specified at a time"))
    ref = source.get("fieldRef")
    if isinstance(ref, dict) and not ref.get("fieldPath"):
        causes.append(required(f"{field}.valueFrom.fieldRef.fieldPath"))
    for key in ("configMapKeyRef", "secretKeyRef"):
        if isinstance(source.get(key), dict) and not source[key].get("key"):
            causes.append(required(f"{field}.valueFrom.{key}.key"))
    return causes


def _validate_container(field: str, c: Any, volumes: set[str]) -> Causes:
    if not isinstance(c, dict):
        return [v.invalid_value(field, c, "must be an object")]
    causes: Causes = []
    if not c.get("name"):
        causes.append(required(f"{field}.name"))
    elif not (isinstance(c["name"], str) and v.valid_dns1123_label(c["name"])):
        causes += v.name_check(f"{field}.name", c["name"], v.dns1123_label)
    if not c.get("image"):
        causes.append(required(f"{field}.image"))
    if c.get("imagePullPolicy") is not None and c["imagePullPolicy"] not in PULL_POLICIES:
        causes.append(not_supported(f"{field}.imagePullPolicy", c["imagePullPolicy"], PULL_POLICIES))
    names = []
    for i, port in enumerate(c.get("ports") or []):
        pf = f"{field}.ports[{i}]"
        cp = port.get("containerPort") if isinstance(port, dict) else None
        if cp is None:
            causes.append(required(f"{pf}.containerPort"))
        elif not isinstance(cp, int) or not 1 <= cp <= 65535:
            causes.append(v.invalid_value(f"{pf}.containerPort", cp, "must be between 1 and 65535, inclusive"))
        hp = port.get("hostPort") if isinstance(port, dict) else None
        if hp not in (None, 0) and (not isinstance(hp, int) or not 1 <= hp <= 65535):
            causes.append(v.invalid_value(f"{pf}.hostPort", hp, "must be between 1 and 65535, inclusive"))
        proto = port.get("protocol") if isinstance(port, dict) else None
        if proto is not None and proto not in PROTOCOLS:
            causes.append(not_supported(f"{pf}.protocol", proto, PROTOCOLS))
        if isinstance(port, dict) and port.get("name"):
            causes += v.port_name(f"{pf}.name", port["name"])
            names.append(port["name"])
    causes += [dup | {"field": dup["field"] + ".name"} for dup in v.unique(f"{field}.ports", names)]
    for i, env in enumerate(c.get("env") or []):          # field paths are formatted only for a cause
        name = env.get("name") if isinstance(env, dict) else None
        if not v.env_name_valid(name):
            causes += v.env_name(f"{field}.env[{i}].name", name)
        if isinstance(env, dict) and env.get("valueFrom") is not None:
            causes += _validate_env_source(f"{field}.env[{i}]", env)
    if c.get("resources") is not None:
        causes += _validate_resources(f"{field}.resources", c["resources"])
    for i, mount in enumerate(c.get("volumeMounts") or []):
        mf = f"{field}.volumeMounts[{i}]"
        if not isinstance(mount, dict):
            continue
        if not mount.get("name"):
            causes.append(required(f"{mf}.name"))
        elif mount["name"] not in volumes:
            causes.append(v.not_found(f"{mf}.name", mount["name"]))
        if not mount.get("mountPath"):
            causes.append(required(f"{mf}.mountPath"))
    for probe, liveness in (("livenessProbe", True), ("readinessProbe", False), ("startupProbe", True)):
        if c.get(probe) is not None:
            causes += _validate_probe(f"{field}.{probe}", c[probe], liveness)
    return causes


def validate_pod_spec(field: str, spec: Any) -> Causes:
    """ValidatePodSpec for the fields kubelite models; ``field`` is ``spec`` or ``spec.template.spec``."""
    if not isinstance(spec, dict):
        return [required(field)]
    causes: Causes = []
    volumes: list[str] = []
    for i, vol in enumerate(spec.get("volumes") or []):
        name = vol.get("name") if isinstance(vol, dict) else None
        if not name:
            causes.append(required(f"{field}.volumes[{i}].name"))
        else:
            causes += v.name_check(f"{field}.volumes[{i}].name", name, v.dns1123_label)
            volumes.append(name)
        sources = [k for k in vol if k != "name"] if isinstance(vol, dict) else []
        if len(sources) > 1:
            causes.append(forbidden_field(f"{field}.volumes[{i}].{sources[1]}", "may not specify more than 1 volume type"))
        if isinstance(vol, dict) and isinstance(vol.get("hostPath"), dict) and not vol["hostPath"].get("path"):
            causes.append(required(f"{field}.volumes[{i}].hostPath.path"))
    causes += [c | {"field": c["field"] + ".name"} for c in v.unique(f"{field}.volumes", volumes)]
    containers = spec.get("containers")
    if not containers:
        causes.append(required(f"{field}.containers"))
    all_names: list[str] = []
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            causes += _validate_container(f"{field}.{key}[{i}]", c, set(volumes))
            if isinstance(c, dict) and c.get("name"):
                if c["name"] in all_names:
                    causes.append({"reason": "FieldValueDuplicate", "message": f'Duplicate value: "{c["name"]}"',
                                   "field": f"{field}.{key}[{i}].name"})
                all_names.append(c["name"])
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in RESTART_POLICIES:
        causes.append(not_supported(f"{field}.restartPolicy", rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy")
    if dp is not None and dp not in DNS_POLICIES:
        causes.append(not_supported(f"{field}.dnsPolicy", dp, DNS_POLICIES))
    causes += v.non_negative(f"{field}.terminationGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"))
    causes += v.positive(f"{field}.activeDeadlineSeconds", spec.get("activeDeadlineSeconds"))
    if spec.get("nodeName"):
        causes += v.name_check(f"{field}.nodeName", spec["nodeName"], v.dns1123_subdomain)
    if spec.get("hostname"):
        causes += v.name_check(f"{field}.hostname", spec["hostname"], v.dns1123_label)
    causes += v.labels(f"{field}.nodeSelector", spec.get("nodeSelector"))
    for i, t in enumerate(spec.get("tolerations") or []):
        if isinstance(t, dict) and t.get("operator") == "Exists" and t.get("value"):
            causes.append(v.invalid_value(f"{field}.tolerations[{i}].operator", t.get("value"),
                                        "value must be empty when `operator` is 'Exists'"))
        if isinstance(t, dict) and t.get("operator") not in (None, "Exists", "Equal"):
            causes.append(not_supported(f"{field}.tolerations[{i}].operator", t.get("operator"), ["Equal", "Exists"]))
    return causes


def _without_mutable(spec: dict[str, Any]) -> dict[str, Any]:
    """A shallow projection of a pod spec without the fields an update may change."""
    out = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for key in ("containers", "initContainers"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c for c in out[key]]
    return out


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    """Only images, activeDeadlineSeconds and added tolerations may change in a pod spec."""
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    causes: Causes = []
    ad_new, ad_old = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if ad_old is not None and (ad_new is None or ad_new > ad_old):
        causes.append(v.invalid_value("spec.activeDeadlineSeconds", ad_new,
                                    "must be less than or equal to previous value" if ad_new is not None
                                    else "must not update from a positive integer to nil value"))
    mutable_new, mutable_old = _without_mutable(ns), _without_mutable(os_)
    old_tol = os_.get("tolerations") or []
    new_tol = ns.get("tolerations") or []
    if any(t not in new_tol for t in old_tol):
        causes.append(forbidden_field("spec.tolerations", "existing toleration can not be modified except its "
                                      "tolerationSeconds"))
    if ns.get("terminationGracePeriodSeconds") == 1 and (os_.get("terminationGracePeriodSeconds") or 0) < 0:
        mutable_new["terminationGracePeriodSeconds"] = os_.get("terminationGracePeriodSeconds")
    if mutable_new != mutable_old:
        causes.append(forbidden_field("spec", POD_UPDATE_FORBIDDEN))
    for key in ("containers", "initContainers"):
        for i, c in enumerate(ns.get(key) or []):
            if isinstance(c, dict) and not c.get("image"):
                causes.append(required(f"spec.{key}[{i}].image"))
    return causes
