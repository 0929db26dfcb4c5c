"""Per-kind strategies: what happens to an object on create, update and status update.

Placeholder seam (no-op); the full defaulting/validation lands here. The handlers call only
``strategy_for(info)`` and the five methods of :class:`Strategy`.
"""

from __future__ import annotations

from typing import Any, Protocol

from kubelite.api.errors import StatusCause
from kubelite.api.resources import ResourceInfo


class Strategy(Protocol):
    def prepare_for_create(self, obj: dict[str, Any]) -> None: ...
    def validate(self, obj: dict[str, Any]) -> list[StatusCause]: ...
    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None: ...
    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[StatusCause]: ...
    def prepare_for_status_update(self, new: dict[str, Any], old: dict[str, Any]) -> None: ...


class DefaultStrategy:
    """Keeps status out of spec writes and spec out of status writes; validates nothing else yet."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        return None

    def validate(self, obj: dict[str, Any]) -> list[StatusCause]:
        return []

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        if "status" in old:
            new["status"] = old["status"]

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[StatusCause]:
        return []

    def prepare_for_status_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        if "spec" in old:
            new["spec"] = old["spec"]


def strategy_for(info: ResourceInfo) -> Strategy:
    return DefaultStrategy()
