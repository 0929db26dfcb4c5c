"""Accessors for ``metadata`` of API objects (plain dicts), owner references and timestamps. No I/O."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Mapping


def now_rfc3339() -> str:
    """The current time as Kubernetes writes it: ``2026-01-02T03:04:05Z`` (second precision)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset; fractional seconds allowed)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


_random = bytearray()      # random bytes not handed out yet (4 KiB per getrandom call)


def _forget_random() -> None:
    _random.clear()


os.register_at_fork(after_in_child=_forget_random)   # a forked child must not repeat the parent's uids


def new_uid() -> str:
    """A random (version 4) UUID, as ``uuid.uuid4()`` but without a syscall per uid."""
    if len(_random) < 16:
        _random[:] = os.urandom(4096)
    b = _random[-16:]
    del _random[-16:]
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def name(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("name") or "")


def namespace(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("namespace") or "")


def uid(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("uid") or "")


def resource_version(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("resourceVersion") or "")


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    value = metadata(obj).get("labels")
    return value if isinstance(value, dict) else {}


def annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    value = metadata(obj).get("annotations")
    return value if isinstance(value, dict) else {}


def finalizers(obj: Mapping[str, Any]) -> list[str]:
    value = metadata(obj).get("finalizers")
    return list(value) if isinstance(value, list) else []


def deletion_timestamp(obj: Mapping[str, Any]) -> str | None:
    value = metadata(obj).get("deletionTimestamp")
    return str(value) if value else None


def owner_references(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = metadata(obj).get("ownerReferences")
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in owner_references(obj):
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True,
                    block_owner_deletion: bool = True) -> dict[str, Any]:
    """An ownerReference pointing at ``owner`` (which must carry apiVersion, kind, name, uid)."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": name(owner), "uid": uid(owner),
            "controller": controller, "blockOwnerDeletion": block_owner_deletion}


def key_of(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects), client-go's cache key."""
    ns = namespace(obj)
    return f"{ns}/{name(obj)}" if ns else name(obj)
