"""Field managers from the User-Agent, managedFields-only writes and pods without generation,
against a real etcd and apiserver."""

from __future__ import annotations

from tests.support.http import Api, pod

PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def _managers(obj: dict) -> set[tuple[str, str, str]]:
    return {(e["manager"], e["operation"], e.get("subresource", "")) for e in obj["metadata"].get("managedFields", [])}


async def test_field_manager_defaults_to_the_user_agent_prefix(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        ua = {"User-Agent": "my-controller/v1.2 (linux/amd64) kubernetes/abc"}
        r = await api.post(PODS, pod("ua1", {"app": "x"}), headers=ua)
        assert r.status == 201, r.body
        assert _managers(r.body) == {("my-controller", "Update", "")}
        r = await api.patch(f"{PODS}/ua1", {"metadata": {"labels": {"b": "2"}}}, headers={"User-Agent": "other/1"})
        assert r.status == 200, r.body
        assert _managers(r.body) == {("my-controller", "Update", ""), ("other", "Update", "")}
        fields = {e["manager"]: e["fieldsV1"] for e in r.body["metadata"]["managedFields"]}
        assert "f:b" in fields["other"]["f:metadata"]["f:labels"]
        status = dict(r.body, status={"phase": "Running"})
        r = await api.put(f"{PODS}/ua1/status", status, headers={"User-Agent": "kubelet/v1.32"})
        assert r.status == 200, r.body
        assert ("kubelet", "Update", "status") in _managers(r.body)
        # an explicit fieldManager wins over the User-Agent
        r = await api.patch(f"{PODS}/ua1", {"metadata": {"labels": {"c": "3"}}}, headers=ua,
                            params={"fieldManager": "named"})
        assert ("named", "Update", "") in _managers(r.body)


async def test_scale_is_owned_by_its_writer(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sc"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "sc"}},
                         "template": {"metadata": {"labels": {"app": "sc"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
        r = await api.patch(f"{DEPLOYS}/sc", body, "application/apply-patch+yaml", params={"fieldManager": "kubectl"})
        assert r.status == 201, r.body
        r = await api.patch(f"{DEPLOYS}/sc/scale", {"spec": {"replicas": 4}}, headers={"User-Agent": "kubectl/v1.32"})
        assert r.status == 200, r.body
        d = (await api.get(f"{DEPLOYS}/sc")).body
        assert ("kubectl", "Update", "scale") in _managers(d)
        body["spec"]["replicas"] = 2
        r = await api.patch(f"{DEPLOYS}/sc", body, "application/apply-patch+yaml", params={"fieldManager": "kubectl"})
        assert r.status == 409 and ".spec.replicas" in r.body["message"], r.body


async def test_pods_have_no_generation(apiserver_url: str) -> None:
    # Kubernetes 1.32 sets metadata.generation on pods in no write path (1.33 started to)
    async with Api(apiserver_url) as api:
        body = pod("gen1")
        body["metadata"]["generation"] = 7
        r = await api.post(PODS, body)
        assert r.status == 201 and "generation" not in r.body["metadata"], r.body
        r = await api.patch(f"{PODS}/gen1", {"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}},
                            "application/strategic-merge-patch+json")
        assert r.status == 200 and r.body["spec"]["containers"][0]["image"] == "busybox:1.37", r.body
        assert "generation" not in r.body["metadata"], r.body
        applied = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gen2"},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        r = await api.patch(f"{PODS}/gen2", applied, "application/apply-patch+yaml", params={"fieldManager": "t"})
        assert r.status == 201 and "generation" not in r.body["metadata"], r.body
        r = await api.put(f"{PODS}/gen2/status", dict(r.body, status={"phase": "Running"}))
        assert r.status == 200 and "generation" not in r.body["metadata"], r.body
