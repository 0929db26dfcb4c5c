"""fieldValidation Strict/Warn/Ignore against Kubernetes' schemas (cases after field_validation_test.go)."""

import json
import time

import pytest

from apiserver.registry import fieldvalidation
from kubelite.api.errors import BadRequest
from kubelite.api.resources import CONFIGMAPS, DEPLOYMENTS, PODS

pytestmark = pytest.mark.unit


def pod(**extra_spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "1"}}}],
                     **extra_spec}}


def test_known_fields_pass_untouched_in_every_mode():
    obj = pod(nodeSelector={"x": "y"}, volumes=[{"name": "v", "emptyDir": {}}])
    obj["metadata"]["managedFields"] = [{"manager": "m", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:any": {}}}}]
    obj["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    for mode in ("Strict", "Warn", "Ignore", None):
        cleaned, warnings = fieldvalidation.check(PODS, obj, mode)
        assert cleaned == obj and warnings == []


def test_strict_rejects_unknown_with_kubernetes_message():
    obj = pod(foo=1)
    obj["spec"]["containers"][0]["bogus"] = True
    with pytest.raises(BadRequest) as e:
        fieldvalidation.check(PODS, obj, "Strict")
    assert e.value.message == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                               'unknown field "spec.containers[0].bogus", unknown field "spec.foo"')
    assert e.value.status_code == 400


def test_warn_returns_warnings_and_drops():
    obj = pod(foo=1)
    cleaned, warnings = fieldvalidation.check(PODS, obj, "Warn")
    assert warnings == ['unknown field "spec.foo"']
    assert "foo" not in cleaned["spec"]


def test_ignore_drops_silently():
    cleaned, warnings = fieldvalidation.check(DEPLOYMENTS, {"apiVersion": "apps/v1", "kind": "Deployment",
                                                            "metadata": {"name": "d"}, "spec": {"x": 1}}, "Ignore")
    assert cleaned == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}
    assert warnings == []


def test_duplicates_in_document_order():
    raw = ('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","name":"d","unknownMeta":1},'
           '"spec":{"unknown1":1,"paused":true,"paused":false,"template":{"spec":{"containers":'
           '[{"name":"c","unknownNested":1,"imagePullPolicy":"Always","imagePullPolicy":"Never"}]}}}}')
    obj = json.loads(raw)
    with pytest.raises(BadRequest) as e:
        fieldvalidation.check(DEPLOYMENTS, obj, "Strict", raw=raw.encode())
    assert e.value.message.endswith(
        'strict decoding error: duplicate field "metadata.name", unknown field "metadata.unknownMeta", '
        'unknown field "spec.unknown1", duplicate field "spec.paused", '
        'unknown field "spec.template.spec.containers[0].unknownNested", '
        'duplicate field "spec.template.spec.containers[0].imagePullPolicy"')


def test_map_values_are_free_keys():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"any.key": "v"}, "dta": {}}
    cleaned, warnings = fieldvalidation.check(CONFIGMAPS, cm, None)
    assert warnings == ['unknown field "dta"'] and cleaned["data"] == {"any.key": "v"}


def test_bad_mode_is_bad_request():
    with pytest.raises(BadRequest):
        fieldvalidation.check(PODS, pod(), "Loud")


def test_fast():
    fieldvalidation.check(PODS, pod(), "Strict")  # loads the schema once
    obj = pod(volumes=[{"name": f"v{i}", "emptyDir": {}} for i in range(20)])
    start = time.perf_counter()
    for _ in range(200):
        fieldvalidation.check(PODS, obj, "Strict", raw=json.dumps(obj))
    assert (time.perf_counter() - start) / 200 < 0.005


def test_warning_header_quoting():
    assert fieldvalidation.warning_header('unknown field "spec.foo"') == '299 - "unknown field \\"spec.foo\\""'
    assert fieldvalidation.warning_header("a\\b\nc") == '299 - "a\\\\b c"'


@pytest.mark.parametrize("mode", ["Strict", "Warn", "Ignore"])
def test_wrong_types_are_decoding_errors_in_every_mode(mode):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "3"}}
    with pytest.raises(BadRequest) as e:
        fieldvalidation.check(DEPLOYMENTS, d, mode)
    assert e.value.message == ('Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
                               'string into Go struct field DeploymentSpec.spec.replicas of type int32')
    p = pod()
    p["spec"]["containers"][0]["ports"] = [{"containerPort": "80"}]
    with pytest.raises(BadRequest, match="Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"):
        fieldvalidation.check(PODS, p, mode)
    p = pod()
    p["spec"]["containers"] = {"name": "c"}
    with pytest.raises(BadRequest, match=r"cannot unmarshal object into Go struct field PodSpec.spec.containers of type \[\]v1.Container"):
        fieldvalidation.check(PODS, p, mode)
    p = pod()
    p["metadata"]["labels"] = {"a": 1}
    with pytest.raises(BadRequest, match="cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"):
        fieldvalidation.check(PODS, p, mode)


def test_flexible_types_pass():
    p = pod()
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 1, "memory": "1Gi"}}  # Quantity: string or number
    p["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": "http"}}       # IntOrString
    p["spec"]["terminationGracePeriodSeconds"] = None
    p["status"] = {"conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}]}
    assert fieldvalidation.check(PODS, p, "Strict") == (p, [])


@pytest.mark.parametrize("raw", [
    '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a" : "1", "a": "2"}}}',
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"x":"y\\":"},"labels":{"x":"z"}}}',
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"k":"v","k" \n:"w"}}}',
])
def test_duplicates_found_past_the_fast_path(raw):
    # the one-walk fast path counts keys against '"' + whitespace + ':' in the raw body; spacing
    # before the colon, '":' inside strings and duplicates in free-form maps must all still be found
    with pytest.raises(BadRequest) as e:
        fieldvalidation.check(PODS, json.loads(raw), "Strict", raw=raw.encode())
    assert "duplicate field" in e.value.message


def test_clean_body_with_colons_in_strings_passes():
    raw = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"a":"\\"x\\":1"}},' \
          '"spec":{"containers":[{"name":"c","image":"busybox","command":["sh","-c","echo \\"a\\": b"]}]}}'
    obj = json.loads(raw)
    assert fieldvalidation.check(PODS, obj, "Strict", raw=raw.encode()) == (obj, [])
