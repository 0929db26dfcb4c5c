"""Async helpers for the control-plane component tests: wait for a condition, watch-and-check."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from tests.support.watch import mirror_pods


async def wait_for(cond: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            last = await cond()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def is_active(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


class PodWatcher:
    """Mirrors the pods of a namespace from a watch and calls ``check(pods)`` after every event."""

    def __init__(self, client: Any, namespace: str, check: Callable[[dict[str, dict]], None]) -> None:
        self.client = client
        self.namespace = namespace
        self.check = check
        self.pods: dict[str, dict] = {}
        self.events = 0
        self.violations: list[str] = []

    async def run(self) -> None:
        async for _ in mirror_pods(self.client, self.pods, self.namespace):
            self.events += 1
            try:
                self.check(self.pods)
            except AssertionError as exc:
                self.violations.append(str(exc))
