"""Event TTL: Events expire one hour (kube-apiserver's ``--event-ttl`` default) after their last write.

kube-apiserver attaches an etcd lease to every Event write; here one background task does the same
job on any :class:`~apiserver.storage.Store`: every ``period`` seconds it deletes, with a
resourceVersion precondition, each Event whose last write — ``lastTimestamp``, ``eventTime`` or
``series.lastObservedTime`` when newer, else ``creationTimestamp`` — is older than ``ttl``. Watchers
see the DELETED events as they would on lease expiry. ``$KUBELITE_EVENT_TTL`` (seconds) overrides.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import datetime
from typing import Any

from apiserver.storage import KeyNotFoundError, RevisionMismatchError, StorageError, Store
from apiserver.watchcache import WatchCache

logger = logging.getLogger(__name__)

DEFAULT_TTL = 3600.0
DEFAULT_PERIOD = 60.0


def _epoch(ts: Any) -> float | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def last_write(event: dict[str, Any]) -> float | None:
    """When an Event was last written, as the recorder stamps it (seconds since the epoch)."""
    times = [_epoch(event.get("lastTimestamp")), _epoch(event.get("eventTime")),
             _epoch((event.get("series") or {}).get("lastObservedTime")),
             _epoch((event.get("metadata") or {}).get("creationTimestamp"))]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def expired(cache: WatchCache, ttl: float, now: float) -> list[tuple[str, int]]:
    """(key, resourceVersion) of every cached Event older than ``ttl``."""
    out = []
    for key, ev in cache.caches["events"].items():
        t = last_write(ev)
        if t is not None and now - t > ttl:
            out.append((key, int((ev.get("metadata") or {}).get("resourceVersion") or 0)))
    return out


async def expire_once(store: Store, cache: WatchCache, ttl: float, now: float | None = None) -> int:
    """Delete the expired Events now; returns how many went."""
    n = 0
    for key, rv in expired(cache, ttl, time.time() if now is None else now):
        try:
            await store.delete(key, rv)
            n += 1
        except (KeyNotFoundError, RevisionMismatchError):
            pass                                    # gone already, or rewritten (the next pass decides)
    if n:
        logger.info("expired %d event(s) older than %.0fs", n, ttl)
    return n


async def run_event_ttl(store: Store, cache: WatchCache, ttl: float | None = None,
                        period: float = DEFAULT_PERIOD) -> None:
    """Expire Events forever (until cancelled)."""
    ttl = float(os.environ.get("KUBELITE_EVENT_TTL", "0") or 0) or ttl or DEFAULT_TTL
    period = min(period, max(1.0, ttl / 4))
    while True:
        await asyncio.sleep(period)
        try:
            await expire_once(store, cache, ttl)
        except StorageError as e:
            logger.warning("event expiry failed: %s", e)
