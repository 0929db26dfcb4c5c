"""DefaultBinder: binds a pod by POSTing a Binding to ``pods/<name>/binding``."""

from __future__ import annotations

from typing import Any, Protocol

from kubelite.api.errors import ApiError
from kubelite.api.resources import PODS
from scheduler.framework import SUCCESS, CycleState, Plugin, Status
from scheduler.framework.interface import Pod


class BindingClient(Protocol):
    async def create_subresource(self, res: Any, name: str, sub: str, body: dict[str, Any],
                                 namespace: str | None = None) -> Any: ...


class DefaultBinder(Plugin):
    name = "DefaultBinder"

    def __init__(self, client: BindingClient) -> None:
        self._client = client

    async def bind(self, state: CycleState, pod: Pod, node_name: str) -> Status:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace", "default"), "uid": meta.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        try:
            await self._client.create_subresource(PODS, meta["name"], "binding", body, meta.get("namespace"))
        except ApiError as exc:
            return Status.error(str(exc), plugin=self.name)
        return SUCCESS
