"""Leader election on a Lease: one winner, expiry observed locally, renew, release, losing leadership."""

from __future__ import annotations

import asyncio

import pytest

from kubelite.api.errors import ServiceUnavailable
from kubelite.api.resources import LEASES
from kubelite.client import Client
from kubelite.leaderelection import LeaderElectionConfig, LeaderElector
from tests.unit.client.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.unit


def elector(client: Client, identity: str, clock: list[float], **kw: float) -> LeaderElector:
    return LeaderElector(client, LeaderElectionConfig("kube-scheduler", identity, **kw),  # type: ignore[arg-type]
                         clock=lambda: clock[0])


async def test_one_winner_expiry_and_release(client: Client, fake: FakeApiServer) -> None:
    clock = [100.0]
    a, b = elector(client, "a", clock), elector(client, "b", clock)
    assert await a.try_acquire_or_renew()
    lease = await client.get(LEASES, "kube-scheduler", namespace="kube-system")
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 15
    assert not await b.try_acquire_or_renew() and b.leader == "a"
    assert await a.try_acquire_or_renew(), "renew"
    clock[0] += 14
    assert not await b.try_acquire_or_renew(), "b observed a renewal 14 s ago (its own clock)"
    clock[0] += 16
    assert await b.try_acquire_or_renew(), "a stopped renewing for longer than the lease duration"
    lease = await client.get(LEASES, "kube-scheduler", namespace="kube-system")
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    assert await b.release()
    assert await a.try_acquire_or_renew(), "a released lease is free at once"


async def test_stale_resource_version_loses(client: Client, fake: FakeApiServer) -> None:
    clock = [0.0]
    other = Client.from_url(fake.url)
    a, b = elector(other, "a", clock), elector(client, "b", clock)
    assert await a.try_acquire_or_renew()
    clock[0] = 100.0
    real_get = client.get

    async def racing_get(*args, **kw):  # b reads, then a renews before b writes
        lease = await real_get(*args, **kw)
        await a.try_acquire_or_renew()
        return lease

    client.get = racing_get  # type: ignore[method-assign]
    assert not await b.try_acquire_or_renew()
    client.get = real_get  # type: ignore[method-assign]
    assert fake.requests[-1].method == "PUT"        # b's write went out, and was refused (409)
    assert (await client.get(LEASES, "kube-scheduler", namespace="kube-system"))["spec"]["holderIdentity"] == "a"
    await other.close()


async def test_run_leads_and_stops_when_renewal_fails(client: Client, fake: FakeApiServer) -> None:
    clock = [0.0]
    el = LeaderElector(client, LeaderElectionConfig("cm", "me", lease_duration=0.6, renew_deadline=0.3,
                                                    retry_period=0.05))
    led = asyncio.Event()
    cancelled = asyncio.Event()

    async def lead() -> None:
        led.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(el.run(lead))
        await asyncio.wait_for(led.wait(), 5)
        assert el.is_leader
        fake.fail_next.extend(ServiceUnavailable("down") for _ in range(1000))
        await asyncio.wait_for(task, 5)
    assert cancelled.is_set() and not el.is_leader
    del clock
