"""The generic object store: Kubernetes semantics of create/get/list/update/delete over a Store.

What kube-apiserver's ``genericregistry.Store`` does, for every resource: keys
``<prefix>/<resource>/<namespace>/<name>``, resourceVersion = mod_revision, uid/creationTimestamp/
generation on create, optimistic concurrency (409 on a stale resourceVersion), metadata that
writers cannot change, status/spec separation of subresources (through the per-kind strategy),
graceful deletion (decided in ``apiserver.deletion``), finalizers, namespace existence checks.
Every write is one conditional storage transaction, so a failed request leaves nothing behind.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from apiserver.deletion import DeleteOptions, plan_delete, spec_finalizers
from apiserver.listing import encode, list_objects
from apiserver.registry.strategy import strategy_for
from apiserver.storage import (KeyExistsError, KeyNotFoundError, KeyValue, RevisionMismatchError,
                               Store, UnavailableError)
from apiserver.watchcache import WatchCache, decode, with_resource_version
from kubelite.api import codec, errors
from kubelite.api import patch as patch_lib
from kubelite.api.errors import StatusCause
from kubelite.api.meta import new_uid
from kubelite.api.resources import NAMESPACES, ResourceInfo
from kubelite.api.selectors import FieldSelector, LabelSelector

logger = logging.getLogger(__name__)

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")
MAX_RETRIES = 20

Mutator = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


_clock: tuple[int, str] = (0, "")


def _now(offset: int = 0) -> str:
    """RFC 3339 UTC time, second precision (formatted once per second: strftime is slow)."""
    global _clock
    second = int(time.time()) + offset
    if offset or second != _clock[0]:
        text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if offset:
            return text
        _clock = (second, text)
    return _clock[1]


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _path_segment_causes(name: str, field: str = "metadata.name") -> list[StatusCause]:
    if name in (".", ".."):
        return [errors.invalid_value(field, name, f'may not be \'{name}\'')]
    for bad in ("/", "%"):
        if bad in name:
            return [errors.invalid_value(field, name, f"may not contain '{bad}'")]
    return []


def _strip_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a no-op check compares it: no resourceVersion, managedFields without their
    ``time`` (a real ownership change, e.g. kubectl's client-side → server-side apply migration, is a write)."""
    out = dict(obj)
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    managed = meta.get("managedFields")
    if isinstance(managed, list):
        meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e
                                 for e in managed]
    out["metadata"] = meta
    return out


class Objects:
    """API objects of every resource in one :class:`~apiserver.storage.Store`."""

    def __init__(self, store: Store, prefix: str, cache: WatchCache) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.cache = cache
        self.namespace_deleted_at = 0     # revision of this server's latest namespace DELETE (see check_namespace)

    # --- keys and reads ------------------------------------------------------------------------

    def key(self, info: ResourceInfo, namespace: str | None, name: str) -> str:
        if info.namespaced:
            return f"{self.prefix}/{info.resource}/{namespace}/{name}"
        return f"{self.prefix}/{info.resource}/{name}"

    def collection_prefix(self, info: ResourceInfo, namespace: str | None) -> str:
        base = f"{self.prefix}/{info.resource}/"
        return base + f"{namespace}/" if info.namespaced and namespace else base

    async def _get_kv(self, info: ResourceInfo, namespace: str | None, name: str) -> KeyValue:
        kv = await self.store.get(self.key(info, namespace, name))
        if kv is None:
            raise errors.not_found(info.resource, name, info.group)
        return kv

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
        kv = await self._get_kv(info, namespace, name)
        return decode(kv.value, kv.mod_revision)

    async def get_json(self, info: ResourceInfo, namespace: str | None, name: str) -> bytes:
        """The object as wire JSON, without decoding it when the stored layout allows."""
        kv = await self._get_kv(info, namespace, name)
        raw = with_resource_version(kv.value, kv.mod_revision)
        return raw if raw is not None else codec.dumps(decode(kv.value, kv.mod_revision))

    async def list(self, info: ResourceInfo, namespace: str | None, *, labels: LabelSelector,
                   fields: FieldSelector, limit: int = 0, continue_: str | None = None,
                   resource_version: str | None = None, raw: bool = False) -> dict[str, Any]:
        """A ``<Kind>List`` (see :func:`apiserver.listing.list_objects`)."""
        return await list_objects(self, info, namespace, labels=labels, fields=fields, limit=limit,
                                  continue_=continue_, resource_version=resource_version, raw=raw)

    # --- namespaces ------------------------------------------------------------------------------

    async def check_namespace(self, namespace: str) -> None:
        """404 if the namespace does not exist, 403 if it is terminating (Kubernetes' wording).

        Told from the watch cache once it has seen this server's latest namespace DELETE (a create
        right after it must see the namespace Terminating or gone), else from etcd."""
        key = self.key(NAMESPACES, None, namespace)
        namespaces = self.cache.for_resource(NAMESPACES)
        cached = namespaces.objects.get(key) if namespaces.rv >= self.namespace_deleted_at else None
        if cached is not None and b'"deletionTimestamp"' not in cached and b'"Terminating"' not in cached:
            return                      # the common case, told from the cached JSON without decoding it
        obj = codec.loads(cached) if cached is not None else None
        if obj is None:
            kv = await self.store.get(key)
            if kv is None:
                raise errors.not_found("namespaces", namespace)
            obj = decode(kv.value, kv.mod_revision)
        if (obj.get("metadata") or {}).get("deletionTimestamp") or (obj.get("status") or {}).get("phase") == "Terminating":
            raise errors.Forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated",
                details={"name": namespace, "kind": "namespaces", "causes": [{
                    "reason": "NamespaceTerminating", "field": "metadata.namespace",
                    "message": f"namespace {namespace} is being terminated"}]})

    # --- writes ----------------------------------------------------------------------------------

    async def create(self, info: ResourceInfo, namespace: str | None, obj: dict[str, Any], *,
                     dry_run: bool = False, manager: str | None = None, track_fields: bool = True) -> dict[str, Any]:
        """Create ``obj`` (which this call owns and changes: pass a fresh object)."""
        return (await self._create(info, namespace, obj, dry_run, manager, track_fields))[0]

    async def create_json(self, info: ResourceInfo, namespace: str | None, obj: dict[str, Any], *,
                          dry_run: bool = False, manager: str | None = None) -> bytes:
        """:meth:`create`, answering the created object as wire JSON: the stored bytes with the
        resourceVersion spliced in (no second encoding of the object)."""
        created, stored = await self._create(info, namespace, obj, dry_run, manager, True)
        if stored is not None:
            wire = with_resource_version(stored, int(created["metadata"]["resourceVersion"]))
            if wire is not None:
                return wire
        return codec.dumps(created)

    async def _create(self, info: ResourceInfo, namespace: str | None, obj: dict[str, Any], dry_run: bool,
                      manager: str | None, track_fields: bool) -> tuple[dict[str, Any], bytes | None]:
        """The created object and its stored bytes (None for a dry run)."""
        meta = _meta(obj)
        obj["apiVersion"], obj["kind"] = info.api_version, info.kind
        if info.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not isinstance(meta.get("generateName", ""), str) or not isinstance(meta.get("name", ""), str):
            raise errors.invalid(info.kind, str(meta.get("name") or ""), [errors.invalid_value(
                "metadata.name" if not isinstance(meta.get("name", ""), str) else "metadata.generateName",
                meta.get("name") if not isinstance(meta.get("name", ""), str) else meta.get("generateName"),
                "must be a string")], info.group)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(5))
        name = str(meta.get("name") or "")
        if not name:
            raise errors.invalid(info.kind, "", [{"reason": "FieldValueRequired", "field": "metadata.name",
                                                  "message": "Required value: name or generateName is required"}], info.group)
        for drop in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(drop, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = _now()
        meta.pop("generation", None)          # the kind's strategy starts it at 1 where the kind has one
        strategy = strategy_for(info)
        with _decoding(info):
            _check_meta_types(info, obj)
            strategy.prepare_for_create(obj)
            causes = _path_segment_causes(name) + list(strategy.validate(obj))
        if causes:
            raise errors.invalid(info.kind, name, causes, info.group)
        if track_fields:
            _track_managers(None, obj, manager, None)
        if info.namespaced:
            await self.check_namespace(str(namespace))
        if dry_run:
            return obj, None
        stored = encode(obj)
        try:
            rev = await self.store.create(self.key(info, namespace, name), stored)
        except KeyExistsError:
            raise errors.already_exists(info.resource, name, info.group) from None
        meta["resourceVersion"] = str(rev)
        return obj, stored

    async def update(self, info: ResourceInfo, namespace: str | None, name: str, body: dict[str, Any], *,
                     subresource: str | None = None, dry_run: bool = False,
                     create_missing: bool = False, manager: str | None = None) -> tuple[dict[str, Any], bool]:
        """PUT: replace the object (or its status). Returns ``(object, created)``."""
        body_meta = body.get("metadata") or {}
        wanted_rv = str(body_meta.get("resourceVersion") or "")
        for _ in range(MAX_RETRIES):
            kv = await self.store.get(self.key(info, namespace, name))
            if kv is None:
                if create_missing and not subresource:
                    return await self.create(info, namespace, body, dry_run=dry_run, manager=manager), True
                raise errors.not_found(info.resource, name, info.group)
            if wanted_rv and wanted_rv != str(kv.mod_revision):
                raise errors.conflict(info.resource, name, info.group)
            old = decode(kv.value, kv.mod_revision)
            try:
                return await self._write_update(info, namespace, name, old, copy.deepcopy(body), kv.mod_revision,
                                                subresource=subresource, dry_run=dry_run, manager=manager), False
            except RevisionMismatchError:
                if wanted_rv:
                    raise errors.conflict(info.resource, name, info.group) from None
        raise errors.conflict(info.resource, name, info.group, "too many concurrent writers")

    async def guaranteed_update(self, info: ResourceInfo, namespace: str | None, name: str, mutate: Mutator, *,
                                subresource: str | None = None, dry_run: bool = False,
                                manager: str | None = None, binding: bool = False,
                                track_fields: bool = True) -> dict[str, Any]:
        """Read-modify-write until no other writer raced us (patch, binding, scale, finalizers).

        ``mutate`` gets a fresh copy of the current object and returns the desired one; if that
        carries a resourceVersion different from the current one, the write is a 409 Conflict.
        """
        for _ in range(MAX_RETRIES):
            kv = await self._get_kv(info, namespace, name)
            old = decode(kv.value, kv.mod_revision)
            new = await mutate(copy.deepcopy(old))
            rv = str((new.get("metadata") or {}).get("resourceVersion") or "")
            if rv and rv != str(kv.mod_revision):
                raise errors.conflict(info.resource, name, info.group)
            try:
                return await self._write_update(info, namespace, name, old, new, kv.mod_revision,
                                                subresource=subresource, dry_run=dry_run, manager=manager,
                                                raw=binding, track_fields=track_fields)
            except RevisionMismatchError:
                continue
        raise errors.conflict(info.resource, name, info.group, "too many concurrent writers")

    async def _write_update(self, info: ResourceInfo, namespace: str | None, name: str, old: dict[str, Any],
                            new: dict[str, Any], revision: int, *, subresource: str | None,
                            dry_run: bool, manager: str | None = None, raw: bool = False,
                            track_fields: bool = True) -> dict[str, Any]:
        """One conditional write of ``new`` over ``old`` (``raw``: a system write, e.g. pods/binding,
        that bypasses the kind's update strategy and validation)."""
        if not isinstance(new, dict):
            raise errors.BadRequest("the body of the request was not a JSON object")
        new_meta = _meta(new)
        if new_meta.get("name") and new_meta["name"] != name:
            raise errors.BadRequest(f"the name of the object ({new_meta['name']}) does not match the name on the URL ({name})")
        if info.namespaced and new_meta.get("namespace") and new_meta["namespace"] != namespace:
            raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on the request")
        old_meta = old["metadata"]
        new["apiVersion"], new["kind"] = info.api_version, info.kind
        strategy = strategy_for(info)
        with _decoding(info):
            _check_meta_types(info, new)
            if raw:
                new["metadata"] = dict(old_meta, **{k: v for k, v in new_meta.items() if k in ("finalizers", "labels", "annotations")})
                new_meta = new["metadata"]
            elif subresource == "status":
                for keep in ("name", "namespace", "uid", "creationTimestamp", "deletionGracePeriodSeconds"):
                    if keep in old_meta:
                        new_meta[keep] = old_meta[keep]
                strategy.prepare_for_status_update(new, old)
            else:
                new_meta["name"] = name
                if info.namespaced:
                    new_meta["namespace"] = namespace
                for keep in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
                    if keep in old_meta:
                        new_meta[keep] = old_meta[keep]
                    else:
                        new_meta.pop(keep, None)
                new_meta.pop("selfLink", None)
                strategy.prepare_for_update(new, old)         # defaults, status kept, generation bumped
                if old_meta.get("deletionTimestamp"):
                    added = set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                    if added:
                        raise errors.invalid(info.kind, name, [errors.forbidden_field(
                            "metadata.finalizers", f"no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {sorted(added)}")], info.group)
            if track_fields and not raw:
                _track_managers(old, new, manager, subresource)
            causes = _path_segment_causes(name) + ([] if raw else list(strategy.validate_update(new, old)))
        if causes:
            raise errors.invalid(info.kind, name, causes, info.group)
        new_meta["resourceVersion"] = str(revision)
        if _strip_volatile(new) == _strip_volatile(old):
            return old                      # no-op: no write, no new resourceVersion (as Kubernetes)
        if dry_run:
            return new
        key = self.key(info, namespace, name)
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers") and not spec_finalizers(info, new) \
                and not new_meta.get("deletionGracePeriodSeconds"):
            rev = await self.store.delete(key, revision)
            new_meta["resourceVersion"] = str(rev)
            return new
        rev = await self.store.update(key, encode(new), revision)
        new_meta["resourceVersion"] = str(rev)
        return new

    # --- deletes -------------------------------------------------------------------------------

    async def delete(self, info: ResourceInfo, namespace: str | None, name: str,
                     options: DeleteOptions) -> tuple[dict[str, Any], bool]:
        """DELETE with Kubernetes semantics. Returns ``(object, deleted_now)``."""
        if info is NAMESPACES and name in UNDELETABLE_NAMESPACES:
            raise errors.Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                   details={"name": name, "kind": "namespaces"})
        key = self.key(info, namespace, name)
        for _ in range(MAX_RETRIES):
            kv = await self._get_kv(info, namespace, name)
            obj = decode(kv.value, kv.mod_revision)
            action, new = plan_delete(info, name, obj, options, _now)
            if action == "keep":
                return obj, False
            if options.dry_run:
                return new, action == "remove"
            try:
                if action == "mark":
                    rev = await self.store.update(key, encode(new), kv.mod_revision)
                else:
                    rev = await self.store.delete(key, kv.mod_revision)
            except (RevisionMismatchError, KeyNotFoundError):
                continue
            new["metadata"]["resourceVersion"] = str(rev)
            if info is NAMESPACES:
                self.namespace_deleted_at = max(self.namespace_deleted_at, rev)
            return new, action == "remove"
        raise errors.conflict(info.resource, name, info.group, "too many concurrent writers")


class _decoding:
    """Type errors while defaulting/validating a body are a malformed body: 400, as Kubernetes' decoder.

    A plain context manager class: contextlib's generator-based one costs a generator per write."""

    __slots__ = ("info",)

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> bool:
        if e is None or not isinstance(e, (TypeError, AttributeError, KeyError, ValueError, IndexError)) \
                or isinstance(e, errors.ApiError):
            return False
        info = self.info
        logger.debug("%s body failed to decode", info.kind, exc_info=(kind, e, tb))  # type: ignore[arg-type]
        raise errors.BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                                f"{type(e).__name__}: {e}") from None


def _check_meta_types(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """The metadata fields the generic store relies on must have their wire types."""
    meta = obj.get("metadata")
    causes: list[StatusCause] = []
    for field, kind in (("finalizers", list), ("ownerReferences", list), ("labels", dict), ("annotations", dict)):
        value = meta.get(field) if isinstance(meta, dict) else None
        if value is not None and not isinstance(value, kind):
            causes.append(errors.invalid_value(f"metadata.{field}", value, f"must be {'a list' if kind is list else 'an object'}"))
    finalizers = meta.get("finalizers") if isinstance(meta, dict) else None
    if isinstance(finalizers, list) and not all(isinstance(f, str) for f in finalizers):
        causes.append(errors.invalid_value("metadata.finalizers", finalizers, "must be a list of strings"))
    for field in ("spec", "status"):
        if field in obj and obj[field] is not None and not isinstance(obj[field], dict) and info.kind not in ("Secret", "ConfigMap"):
            causes.append(errors.invalid_value(field, obj[field], "must be an object"))
    if causes:
        raise errors.invalid(info.kind, str((meta or {}).get("name") or ""), causes, info.group)


def _track_managers(old: dict[str, Any] | None, new: dict[str, Any], manager: str | None,
                    subresource: str | None) -> None:
    """Record in managedFields what a write by ``manager`` changed (the handlers fall back to the
    User-Agent prefix, as Kubernetes does; an empty manager is not tracked)."""
    if manager:
        patch_lib.update_managed_fields(old, new, manager, "Update", subresource)


__all__ = ["Objects", "DeleteOptions", "SYSTEM_NAMESPACES", "UnavailableError"]
