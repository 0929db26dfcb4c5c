"""Watch from the watch cache against a real etcd: rv=0, replay, resume, 410, bookmarks, timeouts."""

from __future__ import annotations

import time

import pytest

from tests.support import cluster
from tests.support.http import Api, collect, pod

PODS = "/api/v1/namespaces/default/pods"


async def test_watch_rv0_sends_current_state_then_live(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("a"))
        await api.post(PODS, pod("b"))
        stream = api.watch(PODS, {"resourceVersion": "0"})
        first = await collect(stream, 2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in first] == [("ADDED", "a"), ("ADDED", "b")]
        await api.post(PODS, pod("c"))
        await api.patch(f"{PODS}/a", {"metadata": {"labels": {"x": "1"}}})
        await api.delete(f"{PODS}/b")
        live = await collect(stream, 3)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in live] == [
            ("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in live]
        assert rvs == sorted(rvs)
        await stream.aclose()


async def test_watch_replays_from_resource_version_and_resumes(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        listed = (await api.get(PODS)).body
        start = listed["metadata"]["resourceVersion"]
        for name in ("p1", "p2", "p3"):
            await api.post(PODS, pod(name))
        events = await collect(api.watch(PODS, {"resourceVersion": start}), 3)
        assert [e["object"]["metadata"]["name"] for e in events] == ["p1", "p2", "p3"]
        assert all(e["type"] == "ADDED" for e in events)
        # an informer resumes from the last resourceVersion it saw: only what came after
        resume_from = events[1]["object"]["metadata"]["resourceVersion"]
        again = await collect(api.watch(PODS, {"resourceVersion": resume_from}), 1)
        assert again[0]["object"]["metadata"]["name"] == "p3"


async def test_selectors_turn_transitions_into_added_and_deleted(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("w", {"app": "web"}))
        stream = api.watch(PODS, {"resourceVersion": "0", "labelSelector": "app=web"})
        assert (await collect(stream, 1))[0]["type"] == "ADDED"
        await api.post(PODS, pod("other", {"app": "db"}))
        await api.patch(f"{PODS}/w", {"metadata": {"labels": {"app": "db"}}})      # stops matching
        await api.patch(f"{PODS}/other", {"metadata": {"labels": {"app": "web"}}})  # starts matching
        evs = await collect(stream, 2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("DELETED", "w"), ("ADDED", "other")]
        await stream.aclose()


async def test_watch_field_selector_by_name_and_timeout(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("one"))
        await api.post(PODS, pod("two"))
        t0 = time.monotonic()
        evs = [e async for e in api.watch(PODS, {"resourceVersion": "0", "fieldSelector": "metadata.name=two",
                                                 "timeoutSeconds": "1"})]
        assert time.monotonic() - t0 < 5                    # the server closed the stream
        assert [e["object"]["metadata"]["name"] for e in evs] == ["two"]


async def test_too_old_resource_version_is_410_and_bookmarks(etcd_server: cluster.EtcdServer) -> None:
    with cluster.apiserver(etcd_server.url, extra_args=["--watch-cache-window", "3",
                                                        "--watch-bookmark-interval", "0.2"]) as server:
        async with Api(server.url) as api:
            start = (await api.get(PODS)).body["metadata"]["resourceVersion"]
            for i in range(5):
                await api.post(PODS, pod(f"p{i}"))
            # wait until the cache has seen all five (its window then holds only the last three)
            last = (await api.get(f"{PODS}/p4")).body["metadata"]["resourceVersion"]
            got = await collect(api.watch(PODS, {"resourceVersion": str(int(last) - 1)}), 1)
            assert got[0]["object"]["metadata"]["name"] == "p4"
            evs = [e async for e in api.watch(PODS, {"resourceVersion": start})]
            assert len(evs) == 1 and evs[0]["type"] == "ERROR"
            status = evs[0]["object"]
            assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
            assert "too old resource version" in status["message"]

            bookmarks = await collect(api.watch(PODS, {"resourceVersion": last, "allowWatchBookmarks": "true"}), 2)
            assert [e["type"] for e in bookmarks] == ["BOOKMARK", "BOOKMARK"]
            assert bookmarks[0]["object"]["kind"] == "Pod"
            assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) >= int(last)


@pytest.mark.parametrize("rv", ["abc", "-1"])
async def test_bad_resource_version_is_400(apiserver_url: str, rv: str) -> None:
    async with Api(apiserver_url) as api:
        r = await api.get(PODS, params={"watch": "true", "resourceVersion": rv})
        assert r.status == 400 and r.body["reason"] == "BadRequest"


async def test_watch_with_table_accept(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("t"))
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        evs = await collect(api.watch(PODS, {"resourceVersion": "0"}, headers={"Accept": accept}), 1)
        table = evs[0]["object"]
        assert table["kind"] == "Table" and table["rows"][0]["cells"][0] == "t"
        assert table["rows"][0]["object"]["metadata"]["name"] == "t"
