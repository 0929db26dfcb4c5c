"""Container records: each container's ``meta.json`` (written once, at create) read together with the OCI
state its shim keeps, as the CRI answers a Runtime gives: ``ContainerStatus`` and ``ContainerConfig``.

:class:`Records` caches the meta files (they never change once written) and forgets those another runtime
process (``kubelite runtime``) removed. Its reads are blocking: call them from a worker thread or where a
few small file reads are fine.
"""

from __future__ import annotations

import os
from typing import Any

from kubelet import cri
from kubelet.runtime.ociruntime import state

_STATES = {"creating": cri.ContainerState.UNKNOWN, "created": cri.ContainerState.CREATED,
           "running": cri.ContainerState.RUNNING, "stopped": cri.ContainerState.EXITED}


def config_from_json(d: dict[str, Any]) -> cri.ContainerConfig:
    """A ``ContainerConfig`` back from the ``asdict`` form a meta.json holds."""
    d = dict(d)
    d["metadata"] = cri.ContainerMetadata(**d["metadata"])
    d["mounts"] = tuple(cri.Mount(**m) for m in d.get("mounts", ()))
    d["resources"] = cri.LinuxResources(**d["resources"])
    sec = dict(d["security"])
    sec["capabilities"] = cri.Capabilities(**{k: tuple(v) for k, v in sec["capabilities"].items()})
    sec["supplemental_groups"] = tuple(sec.get("supplemental_groups", ()))
    d["security"] = cri.LinuxSecurityContext(**sec)
    d["command"], d["args"] = tuple(d["command"]), tuple(d["args"])
    d["envs"] = tuple(tuple(e) for e in d["envs"])
    return cri.ContainerConfig(**d)


class Records:
    """The containers under ``containers_dir`` (``<id>/meta.json``), their OCI state under ``oci_root``."""

    def __init__(self, containers_dir: str, oci_root: str) -> None:
        self.containers_dir = containers_dir
        self.oci_root = oci_root
        self._cache: dict[str, dict[str, Any]] = {}

    def read(self, cid: str) -> dict[str, Any] | None:
        """A container's meta.json (cached: it is written once, before the container exists for anyone)."""
        m = self._cache.get(cid)
        if m is None:
            m = state.read_json(os.path.join(self.containers_dir, cid, "meta.json"))
            if m is not None:
                self._cache[cid] = m
        return m

    def get(self, cid: str) -> dict[str, Any]:
        m = self.read(cid)
        if m is None:
            raise cri.NotFoundError(f"container {cid} not found")
        return m

    def forget(self, cid: str) -> None:
        self._cache.pop(cid, None)

    def status(self, meta: dict[str, Any]) -> cri.ContainerStatus:
        cfg = meta["config"]
        st = state.status(self.oci_root, meta["id"])
        kw: dict[str, Any] = {}
        if st is None:
            s = cri.ContainerState.UNKNOWN
        else:
            s = _STATES[st["status"]]
            inner = st.get("_state", {})
            kw["started_at"] = inner.get("started", 0)
            kw["pid"] = st["pid"] or None
            ex = st.get("_exit")
            if ex:
                kw.update(finished_at=ex["finished"], exit_code=ex["exit_code"], reason=ex["reason"],
                          message=ex.get("message", ""))
        return cri.ContainerStatus(
            id=meta["id"], pod_sandbox_id=meta["sandbox"], metadata=cri.ContainerMetadata(**cfg["metadata"]),
            state=s, created_at=meta["created_at"], image=cfg["image"], image_ref=meta.get("image_ref", ""),
            image_id=meta.get("image_id", ""), log_path=meta["log_path"], labels=dict(cfg.get("labels") or {}),
            annotations=dict(cfg.get("annotations") or {}), **kw)

    def list(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        """Every container's status (of one sandbox, if given), read from disk."""
        out = []
        ids = state.list_ids(self.containers_dir)
        for cid in set(self._cache.copy()) - set(ids):  # removed by another runtime process (the CLI)
            self._cache.pop(cid, None)
        for cid in ids:
            m = self.read(cid)
            if m is not None and (sandbox_id is None or m["sandbox"] == sandbox_id):
                out.append(self.status(m))
        return out

    def config(self, cid: str) -> cri.ContainerConfig:
        return config_from_json(self.get(cid)["config"])
