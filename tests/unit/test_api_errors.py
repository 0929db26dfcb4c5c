"""The error classes round-trip through Kubernetes Status objects."""

from kubelite.api import errors


def test_invalid_lists_every_cause_in_kubectl_wording() -> None:
    err = errors.invalid("Pod", "p2", [errors.required("spec.containers[0].image"),
                                       errors.required("metadata.name")])
    status = err.to_status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == ('Pod "p2" is invalid: [spec.containers[0].image: Required value, '
                                 'metadata.name: Required value]')
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.containers[0].image", "metadata.name"]


def test_from_status_rebuilds_the_class() -> None:
    status = errors.not_found("deployments", "web", group="apps").to_status()
    assert status["message"] == 'deployments.apps "web" not found'
    err = errors.from_status(status, 404)
    assert isinstance(err, errors.NotFound) and err.details["name"] == "web"
    assert isinstance(errors.from_status({"reason": "AlreadyExists", "code": 409}, 409), errors.AlreadyExists)
    assert isinstance(errors.from_status(None, 409), errors.Conflict)
    assert isinstance(errors.from_status(None, 410), errors.Gone)


def test_conflict_uses_kubernetes_wording() -> None:
    assert "the object has been modified" in str(errors.conflict("pods", "p1"))
