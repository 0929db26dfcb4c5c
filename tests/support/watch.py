"""Mirror a namespace's pods from a list + watch into a dict, for tests and benchmarks that check
every intermediate state (not just the end state) of what the controllers do."""

from __future__ import annotations

from typing import Any, AsyncIterator

from kubelite.api.resources import PODS


async def mirror_pods(client: Any, pods: dict[str, dict], namespace: str, *, label_selector: str | None = None,
                      allow_bookmarks: bool = True) -> AsyncIterator[Any]:
    """Fill ``pods`` (name → pod) from a list, then keep it current from a watch (renewed when the server
    ends it), yielding each ADDED/MODIFIED/DELETED event after ``pods`` has taken it in. Runs until cancelled."""
    listing = await client.list(PODS, namespace=namespace, label_selector=label_selector)
    for p in listing["items"]:
        pods[p["metadata"]["name"]] = p
    rv = listing["metadata"]["resourceVersion"]
    while True:
        async for ev in client.watch(PODS, namespace=namespace, label_selector=label_selector,
                                     resource_version=rv, allow_bookmarks=allow_bookmarks, timeout_seconds=300):
            rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
            if ev.type == "BOOKMARK":
                continue
            name = ev.object["metadata"]["name"]
            if ev.type == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = ev.object
            yield ev
