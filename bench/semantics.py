"""CPU cost per write of the API semantics layer, beside the codec cost of the same object (the peer).

Run: ``python bench/semantics.py [N]``. Prints µs per call (median of 5 rounds) for field validation,
the create/update strategies, managedFields tracking, strategic merge patch of kubectl's apply body,
the three-way merge kubectl computes and a server-side apply, next to orjson decode+encode of the pod.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from apiserver.registry import fieldvalidation  # noqa: E402
from apiserver.registry.strategy import strategy_for  # noqa: E402
from apiserver.tables import to_table  # noqa: E402
from kubelite.api.patch import apply_patch, strategic_merge_patch, three_way_merge_patch, update_managed_fields  # noqa: E402
from kubelite.api.resources import DEPLOYMENTS, PODS  # noqa: E402

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                             "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]},
}
DEPLOY: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": copy.deepcopy(POD["spec"])}},
}


def measure(fn: Callable[[Any], Any], make: Callable[[], Any], n: int) -> float:
    rounds = []
    for _ in range(5):
        inputs = [make() for _ in range(n)]
        start = time.perf_counter()
        for item in inputs:
            fn(item)
        rounds.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(rounds)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    pods, deploys = strategy_for(PODS), strategy_for(DEPLOYMENTS)
    raw = orjson.dumps(POD)
    created = copy.deepcopy(POD)
    pods.prepare_for_create(created)
    update_managed_fields(None, created, "kubectl-create")
    modified = copy.deepcopy(DEPLOY)
    modified["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    live_deploy = copy.deepcopy(DEPLOY)
    deploys.prepare_for_create(live_deploy)
    csa_patch = three_way_merge_patch(DEPLOY, modified, live_deploy)
    applied = apply_patch(None, DEPLOY, "kubectl")

    def update(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
        old, new = pair
        pods.prepare_for_update(new, old)
        pods.validate_update(new, old)
        update_managed_fields(old, new, "kubectl-edit")

    def relabelled() -> tuple[dict[str, Any], dict[str, Any]]:
        new = copy.deepcopy(created)
        new["metadata"]["labels"]["x"] = "y"
        return created, new

    def status_changed() -> tuple[dict[str, Any], dict[str, Any]]:
        new = copy.deepcopy(created)
        new["status"] = {"phase": "Running", "podIP": "10.0.0.5", "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}
        return created, new

    rows = [
        ("peer: orjson loads+dumps of the pod", lambda r: orjson.dumps(orjson.loads(r)), lambda: raw),
        ("fieldValidation=Strict (with duplicate check)", lambda o: fieldvalidation.check(PODS, o, "Strict", raw),
         lambda: copy.deepcopy(POD)),
        ("create strategy (defaults + validate)", lambda o: (pods.prepare_for_create(o), pods.validate(o)),
         lambda: copy.deepcopy(POD)),
        ("managedFields on create", lambda o: update_managed_fields(None, o, "m"),
         lambda: copy.deepcopy(created) | {"metadata": {k: v for k, v in created["metadata"].items()
                                                        if k != "managedFields"}}),
        ("update path (strategy + validate + managedFields)", update, relabelled),
        ("strategic merge patch (kubectl apply body)", lambda d: strategic_merge_patch(d, csa_patch),
         lambda: live_deploy),
        ("three-way merge (kubectl apply diff)", lambda d: three_way_merge_patch(DEPLOY, modified, d),
         lambda: live_deploy),
        ("server-side apply (re-apply, changed image)", lambda d: apply_patch(d, modified, "kubectl"),
         lambda: applied),
        ("managedFields on a status update (kubelet)",
         lambda pair: update_managed_fields(pair[0], pair[1], "kubelet", "Update", "status"), status_changed),
        ("Table row for a pod", lambda o: to_table(PODS, [o]), lambda: created),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'operation':<{width}}  µs/call (median of 5 × {n})")
    for name, fn, make in rows:
        print(f"{name:<{width}}  {measure(fn, make, n):8.1f}")


if __name__ == "__main__":
    main()
