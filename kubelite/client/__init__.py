"""The Kubernetes REST client: the only way components and the CLI talk to the apiserver.

``Client`` is asynchronous (aiohttp; watches are async iterators of :class:`WatchEvent`), ``SyncClient``
is a light blocking one on ``http.client`` for the CLI, which must start fast. Both build their
requests and read their responses through the same code (``kubelite.client._rest``) and raise
``kubelite.api.errors`` classes. Names are imported lazily so ``from kubelite.client import SyncClient``
never pulls in aiohttp or asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.client._rest import TABLE_ACCEPT, PatchType, Request, Resource, WatchEvent, resolve

if TYPE_CHECKING:
    from kubelite.client._async import Client
    from kubelite.client._sync import SyncClient

__all__ = ["Client", "SyncClient", "WatchEvent", "Request", "Resource", "PatchType", "TABLE_ACCEPT", "resolve"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from kubelite.client._async import Client
        return Client
    if name == "SyncClient":
        from kubelite.client._sync import SyncClient
        return SyncClient
    raise AttributeError(f"module 'kubelite.client' has no attribute {name!r}")
