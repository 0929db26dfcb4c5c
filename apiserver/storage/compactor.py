"""Periodic compaction of the store's history, as kube-apiserver does it (every 5 minutes).

Each tick compacts up to the revision seen at the previous tick, so clients always have at least
one interval of history to resume watches from; older resourceVersions become 410 Gone.
"""

from __future__ import annotations

import asyncio
import logging

from apiserver.storage import StorageError, Store

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0


async def run_compactor(store: Store, interval: float = DEFAULT_INTERVAL) -> None:
    """Compact forever (until cancelled); storage errors are logged and retried next tick."""
    previous = 0
    while True:
        await asyncio.sleep(interval)
        try:
            current = await store.current_revision()
            if previous:
                await store.compact(previous)
                logger.info("compacted storage history up to revision %d", previous)
            previous = current
        except StorageError as e:
            logger.warning("compaction failed: %s", e)
