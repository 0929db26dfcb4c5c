"""Pure pieces of the workload and node commands: rollout status wording, taint specs, --controllers."""

from __future__ import annotations

import pytest

from controllers.__main__ import enabled
from kubelite.cli.common import CliError
from kubelite.cli.nodes import parse_taint
from kubelite.cli.workloads import status_message

pytestmark = pytest.mark.unit


def deploy(generation=2, observed=2, replicas=3, updated=3, total=3, available=3, conditions=()):
    return {"metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available, "conditions": list(conditions)}}


def test_rollout_status_messages_are_kubectls():
    assert status_message(deploy(observed=1)) == ("Waiting for deployment spec update to be observed...", False)
    assert status_message(deploy(updated=1)) == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...', False)
    assert status_message(deploy(total=5)) == (
        'Waiting for deployment "web" rollout to finish: 2 old replicas are pending termination...', False)
    assert status_message(deploy(available=2)) == (
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...', False)
    assert status_message(deploy()) == ('deployment "web" successfully rolled out', True)
    with pytest.raises(CliError, match='deployment "web" exceeded its progress deadline'):
        status_message(deploy(updated=1, conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]))


def test_taint_specs():
    assert parse_taint("dedicated=gpu:NoSchedule") == ({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, False)
    assert parse_taint("dedicated:NoExecute") == ({"key": "dedicated", "effect": "NoExecute"}, False)
    assert parse_taint("dedicated-") == ({"key": "dedicated", "effect": ""}, True)
    assert parse_taint("dedicated:NoSchedule-") == ({"key": "dedicated", "effect": "NoSchedule"}, True)
    for bad in ("dedicated=gpu", "dedicated=gpu:Sometimes", "=x:NoSchedule"):
        with pytest.raises(CliError):
            parse_taint(bad)


def test_controllers_flag():
    assert enabled("*") == ("replicaset", "deployment", "garbagecollector", "nodelifecycle", "podgc", "nodeipam")
    assert enabled("*,-podgc,-nodeipam") == ("replicaset", "deployment", "garbagecollector", "nodelifecycle")
    assert enabled("replicaset,deployment") == ("replicaset", "deployment")
    with pytest.raises(SystemExit):
        enabled("replicaset,bogus")
