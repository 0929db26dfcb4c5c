"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's timing and rules.

A candidate tries every ``retry_period`` to take the Lease: it may when nobody holds it, when it holds
it already, or when the holder's record has not changed for ``lease_duration`` seconds *as observed
locally* (clocks of different machines are never compared). Every write carries the resourceVersion
it read, so two candidates cannot both win. The leader renews every ``retry_period`` and gives up
leadership if it could not renew within ``renew_deadline``; on a clean exit it releases the Lease
(``holderIdentity`` emptied, so a successor need not wait). Defaults: 15 s / 10 s / 2 s.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kubelite.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from kubelite.api.resources import LEASES

logger = logging.getLogger(__name__)


def micro_time() -> str:
    """A metav1.MicroTime: RFC 3339 with microseconds."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    name: str
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True


class LeaderElector:
    """Acquire, renew and release one Lease for one identity."""

    def __init__(self, client: Any, config: LeaderElectionConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        if config.lease_duration <= config.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        self.client = client
        self.config = config
        self._clock = clock
        self._observed_record: dict[str, Any] | None = None   # the Lease spec last seen
        self._observed_rv = ""
        self._observed_time = 0.0
        self._is_leader = False

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    @property
    def leader(self) -> str:
        """The identity holding the Lease as last observed ("" if none)."""
        return str((self._observed_record or {}).get("holderIdentity") or "")

    def _spec(self, acquire_time: str, transitions: int) -> dict[str, Any]:
        now = micro_time()
        return {"holderIdentity": self.config.identity, "leaseDurationSeconds": int(self.config.lease_duration),
                "acquireTime": acquire_time or now, "renewTime": now, "leaseTransitions": transitions}

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: True if this candidate holds the Lease afterwards."""
        cfg = self.config
        try:
            lease = await self.client.get(LEASES, cfg.name, namespace=cfg.namespace)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": self._spec("", 0)}
            try:
                created = await self.client.create(LEASES, body, namespace=cfg.namespace)
            except (AlreadyExists, Conflict):
                return False
            self._observe(created)
            return True
        spec = lease.get("spec") or {}
        rv = str(lease["metadata"].get("resourceVersion", ""))
        if spec != self._observed_record or rv != self._observed_rv:
            self._observe(lease)
        holder = spec.get("holderIdentity") or ""
        held_by_me = holder == cfg.identity
        expired = self._observed_time + float(spec.get("leaseDurationSeconds") or cfg.lease_duration) <= self._clock()
        if holder and not held_by_me and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if held_by_me:
            new_spec = self._spec(str(spec.get("acquireTime") or ""), transitions)
        else:
            new_spec = self._spec("", transitions + 1)
        lease = dict(lease)
        lease["spec"] = new_spec
        try:
            updated = await self.client.update(LEASES, lease, namespace=cfg.namespace)
        except (Conflict, NotFound):
            return False
        self._observe(updated)
        return True

    def _observe(self, lease: dict[str, Any]) -> None:
        self._observed_record = dict(lease.get("spec") or {})
        self._observed_rv = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        self._observed_time = self._clock()

    async def release(self) -> bool:
        """Give the Lease up if this candidate holds it (so a successor need not wait)."""
        cfg = self.config
        try:
            lease = await self.client.get(LEASES, cfg.name, namespace=cfg.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != cfg.identity:
                return False
            lease = dict(lease)
            lease["spec"] = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1,
                             "renewTime": micro_time()}
            await self.client.update(LEASES, lease, namespace=cfg.namespace)
        except ApiError as exc:
            logger.warning("could not release lease %s/%s: %s", cfg.namespace, cfg.name, exc.message)
            return False
        finally:
            self._is_leader = False
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            logger.warning("lease %s/%s: %s", self.config.namespace, self.config.name, exc.message)
            return False

    async def acquire(self) -> None:
        """Wait until this candidate holds the Lease."""
        while not await self._attempt():
            await asyncio.sleep(self.config.retry_period * (1 + random.random() * 0.2))
        self._is_leader = True
        logger.info("%s acquired lease %s/%s", self.config.identity, self.config.namespace, self.config.name)

    async def renew_loop(self) -> None:
        """Renew every retry period; returns when a renewal did not succeed within the renew deadline."""
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.retry_period)
            deadline = self._clock() + cfg.renew_deadline
            while not await self._attempt():
                if self._clock() >= deadline:
                    logger.error("%s failed to renew lease %s/%s: leadership lost", cfg.identity, cfg.namespace,
                                 cfg.name)
                    self._is_leader = False
                    return
                await asyncio.sleep(min(cfg.retry_period, max(0.0, deadline - self._clock())))

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Acquire, run ``lead()`` while leading, and return when leadership is lost or ``lead`` ends.

        ``lead`` is cancelled if a renewal fails; the Lease is released on a clean end or cancellation.
        Callers (component mains) usually exit when this returns, as client-go components do.
        """
        await self.acquire()
        lost = False
        try:
            async with asyncio.TaskGroup() as tg:
                lead_task = tg.create_task(lead())
                renew_task = tg.create_task(self.renew_loop())
                done, _pending = await asyncio.wait({lead_task, renew_task}, return_when=asyncio.FIRST_COMPLETED)
                lost = renew_task in done
                lead_task.cancel()
                renew_task.cancel()
        finally:
            if not lost and self.config.release_on_cancel:
                await asyncio.shield(self.release())
            self._is_leader = False
