"""Pod volumes on the node: emptyDir, hostPath, configMap, secret, downwardAPI and projected → CRI mounts.

Each pod's volumes live under ``<root-dir>/pods/<uid>/volumes/<plugin>/<name>`` as Kubernetes lays them
out. Projected files (configMap, secret, downwardAPI, projected) are written atomically like
Kubernetes' ``AtomicWriter``: a fresh ``..<timestamp>`` directory, a ``..data`` symlink swapped by
rename, and user-visible names that point through ``..data``, so a reader never sees half an update.

emptyDir with ``medium: Memory``: the kubelet never mounts (ARCHITECTURE rule 3). Its directory is
listed in the sandbox annotation :data:`TMPFS_ANNOTATION` (JSON list of host paths with sizes), and
the runtime mounts a tmpfs there for the sandbox's life; a runtime that ignores it leaves it on disk.

The functions here do blocking file I/O: call them in a worker thread.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

from kubelet.cri import Mount
from kubelet.envvars import (ContainerConfigError, Sources, configmap_data, field_ref_value,
                             resource_field_ref_value, secret_data)
from kubelet.poddirs import pod_dir, pod_dirs
from kubelet.qos import parse_quantity

TMPFS_ANNOTATION = "kubelite.io/tmpfs-dirs"
DEFAULT_MODE = 0o644
_PROPAGATION = {"None": "private", "HostToContainer": "rslave", "Bidirectional": "rshared"}
_PLUGIN = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
           "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
           "projected": "kubernetes.io~projected"}


def volume_dir(root: Path, uid: str, kind: str, name: str) -> Path:
    return pod_dir(root, uid) / "volumes" / _PLUGIN[kind] / name


def _items(data: Mapping[str, bytes], items: list[Mapping[str, Any]] | None, default_mode: int,
           kind: str, ns: str, name: str, optional: bool) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise ContainerConfigError(f"configmap references non-existent config key: {key}"
                                       if kind == "ConfigMap" else
                                       f"references non-existent secret key: {key}")
        out[item.get("path") or key] = (data[key], int(item.get("mode", default_mode)))
    return out


def _configmap_files(spec: Mapping[str, Any], ns: str, sources: Sources, default_mode: int
                     ) -> dict[str, tuple[bytes, int]]:
    name = spec.get("name", "")
    cm = sources.configmaps.get(name)
    if cm is None:
        if spec.get("optional"):
            return {}
        raise ContainerConfigError(f'configmap "{name}" not found')
    return _items(configmap_data(cm), spec.get("items"), default_mode, "ConfigMap", ns, name,
                  bool(spec.get("optional")))


def _secret_files(spec: Mapping[str, Any], ns: str, sources: Sources, default_mode: int, name_key: str
                  ) -> dict[str, tuple[bytes, int]]:
    name = spec.get(name_key, "")
    secret = sources.secrets.get(name)
    if secret is None:
        if spec.get("optional"):
            return {}
        raise ContainerConfigError(f'secret "{name}" not found')
    return _items(secret_data(secret), spec.get("items"), default_mode, "Secret", ns, name,
                  bool(spec.get("optional")))


def _downward_files(pod: Mapping[str, Any], spec: Mapping[str, Any], sources: Sources, default_mode: int
                    ) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    for item in spec.get("items") or []:
        if "fieldRef" in item:
            value = field_ref_value(pod, item["fieldRef"].get("fieldPath", ""), sources)
        elif "resourceFieldRef" in item:
            value = resource_field_ref_value(pod, containers[0], item["resourceFieldRef"], sources)
        else:
            continue
        out[item.get("path", "")] = (value.encode(), int(item.get("mode", default_mode)))
    return out


def projected_files(pod: Mapping[str, Any], volume: Mapping[str, Any], sources: Sources
                    ) -> dict[str, tuple[bytes, int]] | None:
    """The files a configMap/secret/downwardAPI/projected volume holds (path → (bytes, mode)), or None."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    if "configMap" in volume:
        spec = volume["configMap"]
        return _configmap_files(spec, ns, sources, int(spec.get("defaultMode", DEFAULT_MODE)))
    if "secret" in volume:
        spec = volume["secret"]
        return _secret_files(spec, ns, sources, int(spec.get("defaultMode", DEFAULT_MODE)), "secretName")
    if "downwardAPI" in volume:
        spec = volume["downwardAPI"]
        return _downward_files(pod, spec, sources, int(spec.get("defaultMode", DEFAULT_MODE)))
    if "projected" in volume:
        spec = volume["projected"]
        mode = int(spec.get("defaultMode", DEFAULT_MODE))
        files: dict[str, tuple[bytes, int]] = {}
        for src in spec.get("sources") or []:
            if "configMap" in src:
                files.update(_configmap_files(src["configMap"], ns, sources, mode))
            elif "secret" in src:
                files.update(_secret_files(src["secret"], ns, sources, mode, "name"))
            elif "downwardAPI" in src:
                files.update(_downward_files(pod, src["downwardAPI"], sources, mode))
        return files
    return None


def atomic_write(target: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    """Make ``target`` hold exactly ``files`` (Kubernetes' AtomicWriter layout). Returns True if changed."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    if data_link.is_symlink():
        current = target / os.readlink(data_link)
        if _same(current, files):
            return False
    else:
        current = None
    ts = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns() % 10**9}"
    ts.mkdir()
    for rel, (content, mode) in files.items():
        path = ts / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
    tmp = target / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(ts.name, tmp)
    os.rename(tmp, data_link)
    visible = {rel.split("/", 1)[0] for rel in files}
    for entry in list(target.iterdir()):
        if entry.name.startswith(".."):
            continue
        if entry.name not in visible and entry.is_symlink():
            entry.unlink()
    for top in visible:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"..data/{top}", link)
    if current is not None and current.is_dir():
        shutil.rmtree(current, ignore_errors=True)
    return True


def _same(current: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    try:
        existing = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
        if existing != set(files):
            return False
        return all((current / rel).read_bytes() == content and
                   (os.stat(current / rel).st_mode & 0o7777) == mode
                   for rel, (content, mode) in files.items())
    except OSError:
        return False


def setup_volumes(root: Path, pod: Mapping[str, Any], sources: Sources) -> tuple[dict[str, Path], list[str]]:
    """Create/refresh every volume of the pod. Returns (volume name → host path, tmpfs dirs as JSON items).

    Raises :class:`ContainerConfigError` when a ConfigMap/Secret a volume needs is missing.
    """
    uid = (pod.get("metadata") or {}).get("uid", "")
    paths: dict[str, Path] = {}
    tmpfs: list[str] = []
    if (pod.get("spec") or {}).get("volumes"):
        pod_dirs(root).make(uid)
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = vol.get("name", "")
        if "hostPath" in vol:
            hp = vol["hostPath"]
            path = Path(hp.get("path", "/"))
            kind = hp.get("type", "")
            if kind == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True, mode=0o755)
            elif kind == "FileOrCreate" and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o644)
            elif kind in ("Directory", "File", "Socket") and not path.exists():
                raise ContainerConfigError(f"hostPath type check failed: {path} does not exist")
            paths[name] = path
        elif "emptyDir" in vol:
            path = volume_dir(root, uid, "emptyDir", name)
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)
            ed = vol["emptyDir"] or {}
            if ed.get("medium") == "Memory":
                size = ed.get("sizeLimit")
                tmpfs.append(json.dumps({"path": str(path),
                                         "sizeBytes": int(parse_quantity(size)) if size else 0}))
            paths[name] = path
        else:
            files = projected_files(pod, vol, sources)
            if files is None:
                continue                       # a kind we do not support: its mounts are skipped
            kind = next(k for k in ("configMap", "secret", "downwardAPI", "projected") if k in vol)
            path = volume_dir(root, uid, kind, name)
            atomic_write(path, files)
            paths[name] = path
    return paths, tmpfs


def container_mounts(container: Mapping[str, Any], volumes: Mapping[str, Path], pod: Mapping[str, Any]
                     ) -> list[Mount]:
    """The container's ``volumeMounts`` as CRI mounts (subPath resolved; projected volumes read-only)."""
    kinds = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        name = vm.get("name", "")
        if name not in volumes:
            raise ContainerConfigError(f"cannot find volume {name!r} to mount into container "
                                       f"{container.get('name')!r}")
        host = volumes[name]
        sub = vm.get("subPath") or ""
        if sub:
            if sub.startswith("/") or ".." in Path(sub).parts:
                raise ContainerConfigError(f"invalid subPath {sub!r}")
            host = host / sub
            if not host.exists():
                host.mkdir(parents=True, exist_ok=True)
        vol = kinds.get(name) or {}
        readonly = bool(vm.get("readOnly")) or any(k in vol for k in ("configMap", "secret", "downwardAPI",
                                                                      "projected"))
        mounts.append(Mount(container_path=vm.get("mountPath", ""), host_path=str(host), readonly=readonly,
                            propagation=_PROPAGATION.get(vm.get("mountPropagation") or "None", "private")))
    return mounts

