"""The controller runner: waits for caches, syncs keys, retries with backoff, records permanent errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kubelite.api.resources import PODS
from kubelite.client import Client
from kubelite.controller import Controller, PermanentError
from kubelite.informer import Informer
from kubelite.workqueue import ItemExponentialFailureRateLimiter, RateLimitingQueue
from tests.unit.client.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.unit


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, reason, message))


async def test_runner_syncs_retries_and_gives_up_on_permanent_errors(client: Client, fake: FakeApiServer) -> None:
    for name in ("ok", "flaky", "bad"):
        fake.put(PODS, {"metadata": {"name": name}})
    inf = Informer(client, PODS)
    calls: list[str] = []
    synced_before_first_call: list[bool] = []

    async def sync(key: str) -> None:
        synced_before_first_call.append(inf.has_synced)
        calls.append(key)
        if key == "default/flaky" and calls.count(key) < 3:
            raise RuntimeError("transient")
        if key == "default/bad":
            raise PermanentError("spec.x: unsupported", obj=inf.store.get(key), reason="InvalidSpec")

    recorder = FakeRecorder()
    queue: RateLimitingQueue[str] = RateLimitingQueue("t", ItemExponentialFailureRateLimiter(0.01, 1))
    ctrl = Controller("test", sync, informers=[inf], workers=2, recorder=recorder, queue=queue)  # type: ignore[arg-type]
    inf.add_handler(**ctrl.handlers())
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(inf.run()), tg.create_task(ctrl.run())]
        await until(lambda: calls.count("default/flaky") == 3 and "default/bad" in calls and "default/ok" in calls)
        assert all(synced_before_first_call)
        assert queue.num_requeues("default/flaky") == 0, "forgotten after success"
        await asyncio.sleep(0.05)
        assert calls.count("default/bad") == 1, "permanent errors are not retried"
        assert recorder.events == [("bad", "Warning", "InvalidSpec", "spec.x: unsupported")]
        assert ctrl.permanent_errors == {"default/bad": "spec.x: unsupported"}
        # an update re-enqueues through the handlers
        fake.put(PODS, {"metadata": {"name": "ok", "labels": {"v": "2"}}})
        await until(lambda: calls.count("default/ok") == 2)
        for t in tasks:
            t.cancel()
    assert queue.shutting_down


async def test_max_retries_drops_the_key() -> None:
    attempts: list[str] = []

    async def sync(key: str) -> None:
        attempts.append(key)
        raise ValueError("always")

    queue: RateLimitingQueue[str] = RateLimitingQueue("", ItemExponentialFailureRateLimiter(0.001, 0.01))
    ctrl = Controller("t", sync, max_retries=3, queue=queue)
    ctrl.enqueue_key("k")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(ctrl.run())
        await until(lambda: len(attempts) == 4)
        await asyncio.sleep(0.05)
        assert len(attempts) == 4 and queue.num_requeues("k") == 0
        task.cancel()
