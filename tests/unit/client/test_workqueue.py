"""WorkQueue semantics as client-go's: dedup, processing set, delays, rate limiting, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from kubelite.workqueue import (BucketRateLimiter, DelayingQueue, ItemExponentialFailureRateLimiter,
                                RateLimitingQueue, ShutDown, WorkQueue, default_controller_rate_limiter)

pytestmark = pytest.mark.unit


async def test_dedup_and_fifo() -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in ("a", "b", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_item_added_while_processing_is_requeued_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    item = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0, "not handed out twice while processing"
    assert q.get_nowait() is None
    q.done(item)
    assert len(q) == 1 and await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_get_waits_and_shutdown_drains_then_raises() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"
    q.add("y")
    q.shut_down()
    q.add("z")                      # refused after shutdown
    assert await q.get() == "y"
    with pytest.raises(ShutDown):
        await q.get()
    waiter = asyncio.create_task(q.get())
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)


async def test_add_after_keeps_earliest() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    q.add_after("a", 30)
    q.add_after("a", 0.02)
    q.add_after("a", 60)
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 2) == "a"
    q.add_after("b", 30)
    q.shut_down()
    assert not q._timers


def test_exponential_backoff_5ms_to_1000s() -> None:
    rl: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    assert [rl.when("k") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert rl.num_requeues("k") == 4 and rl.when("other") == 0.005
    for _ in range(100):
        last = rl.when("k")
    assert last == 1000.0
    rl.forget("k")
    assert rl.when("k") == 0.005


def test_bucket_limits_overall_rate() -> None:
    now = [0.0]
    rl: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=3, clock=lambda: now[0])
    assert [rl.when(str(i)) for i in range(3)] == [0.0, 0.0, 0.0]
    assert rl.when("x") == pytest.approx(0.1)
    assert rl.when("y") == pytest.approx(0.2)
    now[0] = 10.0
    assert rl.when("z") == 0.0


def test_default_limiter_takes_the_max() -> None:
    rl = default_controller_rate_limiter()
    assert rl.when("a") == 0.005 and rl.when("a") == 0.01
    rl.forget("a")
    assert rl.num_requeues("a") == 0


async def test_rate_limited_requeue_then_forget() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("test", ItemExponentialFailureRateLimiter(0.01, 1.0))
    q.add_rate_limited("k")
    q.add_rate_limited("k")        # second failure: 20 ms, but the 10 ms timer wins
    assert q.num_requeues("k") == 2
    assert await asyncio.wait_for(q.get(), 2) == "k"
    q.forget("k")
    q.done("k")
    assert q.num_requeues("k") == 0
