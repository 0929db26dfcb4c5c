"""Lists against a real etcd: label and field selectors, limit/continue pinned at one revision."""

from __future__ import annotations

from tests.support.http import Api, pod

PODS = "/api/v1/namespaces/default/pods"


def names(reply_body: dict) -> list[str]:
    return [i["metadata"]["name"] for i in reply_body["items"]]


async def test_label_selectors(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("a", {"app": "web", "tier": "fe"}))
        await api.post(PODS, pod("b", {"app": "web"}))
        await api.post(PODS, pod("c", {"app": "db", "tier": "be"}))
        await api.post(PODS, pod("d"))
        cases = {
            "app=web": ["a", "b"], "app==web": ["a", "b"], "app!=web": ["c", "d"],
            "app in (db,web)": ["a", "b", "c"], "app notin (web)": ["c", "d"],
            "tier": ["a", "c"], "!tier": ["b", "d"], "app=web,tier": ["a"], "": ["a", "b", "c", "d"],
        }
        for selector, expected in cases.items():
            r = await api.get(PODS, params={"labelSelector": selector})
            assert r.status == 200 and names(r.body) == expected, (selector, r.body)
        bad = await api.get(PODS, params={"labelSelector": "app in web"})
        assert bad.status == 400 and bad.body["reason"] == "BadRequest"


async def test_field_selectors(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("on-n1", node="n1"))
        await api.post(PODS, pod("on-n2", node="n2"))
        done = (await api.post(PODS, pod("done", node="n1"))).body
        await api.put(f"{PODS}/done/status", dict(done, status={"phase": "Succeeded"}))
        r = await api.get("/api/v1/pods", params={
            "fieldSelector": "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed"})
        assert names(r.body) == ["on-n1"]
        r = await api.get(PODS, params={"fieldSelector": "metadata.name=on-n2"})
        assert names(r.body) == ["on-n2"]
        r = await api.get("/api/v1/pods", params={"fieldSelector": "metadata.namespace=kube-system"})
        assert names(r.body) == []
        r = await api.get(PODS, params={"fieldSelector": "spec.bogus=1"})
        assert r.status == 400 and r.body["message"] == "field label not supported: spec.bogus"

        ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Started",
              "involvedObject": {"kind": "Pod", "namespace": "default", "name": "on-n1", "uid": "u1", "apiVersion": "v1"}}
        await api.post("/api/v1/namespaces/default/events", ev)
        await api.post("/api/v1/namespaces/default/events",
                       dict(ev, metadata={"name": "e2"}, involvedObject=dict(ev["involvedObject"], name="x", uid="u2")))
        r = await api.get("/api/v1/namespaces/default/events", params={
            "fieldSelector": "involvedObject.kind=Pod,involvedObject.name=on-n1,involvedObject.uid=u1,"
                             "involvedObject.namespace=default"})
        assert names(r.body) == ["e1"]


async def test_limit_and_continue(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        for i in range(7):
            await api.post(PODS, pod(f"p{i}", {"even": str(i % 2 == 0).lower()}))
        first = (await api.get(PODS, params={"limit": "3"})).body
        assert names(first) == ["p0", "p1", "p2"] and first["metadata"]["continue"]
        pinned = first["metadata"]["resourceVersion"]
        await api.post(PODS, pod("p7"))                 # after the first page: not in this list
        await api.delete(f"{PODS}/p5")                  # deleted after the first page: still listed
        second = (await api.get(PODS, params={"limit": "3", "continue": first["metadata"]["continue"]})).body
        assert names(second) == ["p3", "p4", "p5"] and second["metadata"]["resourceVersion"] == pinned
        third = (await api.get(PODS, params={"limit": "3", "continue": second["metadata"]["continue"]})).body
        assert names(third) == ["p6"] and "continue" not in third["metadata"]

        filtered = (await api.get(PODS, params={"limit": "2", "labelSelector": "even=true"})).body
        assert names(filtered) == ["p0", "p2"]
        rest = (await api.get(PODS, params={"limit": "2", "labelSelector": "even=true",
                                            "continue": filtered["metadata"]["continue"]})).body
        assert names(rest) == ["p4", "p6"]

        bad = await api.get(PODS, params={"limit": "3", "continue": "not-a-token"})
        assert bad.status == 400


async def test_list_all_namespaces_and_rv0(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("x"))
        sys_pod = pod("y")
        await api.post("/api/v1/namespaces/kube-system/pods", sys_pod)
        r = await api.get("/api/v1/pods")
        assert sorted(names(r.body)) == ["x", "y"] and r.body["kind"] == "PodList"
        cached = (await api.get("/api/v1/pods", params={"resourceVersion": "0"})).body
        assert int(cached["metadata"]["resourceVersion"]) > 0 and len(cached["items"]) <= 2
