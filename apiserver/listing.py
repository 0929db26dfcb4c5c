"""Reading collections: lists paged at one pinned revision, continue tokens, and the stored layout.

Values are stored as :func:`encode` lays them out (``apiVersion, kind, metadata, ...`` without
resourceVersion), so a list without selectors splices the resourceVersion into the stored bytes
(:func:`with_resource_version`) instead of decoding and re-encoding every object.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from apiserver.storage import CompactedError
from apiserver.watchcache import decode, with_resource_version
from kubelite.api import codec, errors
from kubelite.api.resources import ResourceInfo
from kubelite.api.selectors import FieldSelector, LabelSelector, object_fields

if TYPE_CHECKING:
    from apiserver.objects import Objects


def encode(obj: dict[str, Any]) -> bytes:
    """The stored form: the object without its resourceVersion (that is the key's mod_revision).

    Keys are laid out ``apiVersion, kind, metadata, ...`` so that :func:`with_resource_version`
    can put the resourceVersion back into a stored value without decoding it.
    """
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
    ordered: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind") if k in obj}
    ordered["metadata"] = meta
    for k, v in obj.items():
        if k not in ordered:
            ordered[k] = v
    return codec.dumps(ordered)


async def list_objects(objects: Objects, info: ResourceInfo, namespace: str | None, *, labels: LabelSelector,
                       fields: FieldSelector, limit: int = 0, continue_: str | None = None,
                       resource_version: str | None = None, raw: bool = False) -> dict[str, Any]:
    """A ``<Kind>List``; paged with ``limit``/``continue`` at one pinned revision.

    With ``raw`` (only when both selectors are empty) the items are read from storage as JSON
    bytes without being decoded (some may still be dicts): see :func:`with_resource_version`.
    """
    def match(obj: dict[str, Any]) -> bool:
        return (labels.empty or labels.matches((obj.get("metadata") or {}).get("labels"))) and (
            fields.empty or fields.matches(object_fields(info.resource, obj)))

    prefix = objects.collection_prefix(info, namespace)
    items: list[Any] = []
    list_meta: dict[str, Any] = {}
    if resource_version == "0" and not continue_ and not limit:
        cache = objects.cache.for_resource(info)
        for key in sorted(cache.objects):
            if not key.startswith(prefix):
                continue
            value = cache.objects[key]               # wire JSON: decoded only to be matched or tabled
            if raw:
                items.append(value)
            elif match(obj := codec.loads(value)):
                items.append(obj)
        list_meta["resourceVersion"] = str(cache.rv)
        return {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta, "items": items}

    revision, start = 0, prefix
    if continue_:
        revision, start = decode_continue(continue_, prefix)
    name = fields.exact("metadata.name")
    if name is not None and (namespace or not info.namespaced) and not continue_:
        # one read for the object and the list's resourceVersion: a get then a separate current_revision
        # could answer the object as it was before a write and the revision after it, so a watch from
        # that resourceVersion would never see the write (kubectl rollout status waited forever on it)
        key = objects.key(info, namespace, name)
        page = await objects.store.list(key, limit=1)
        rev = page.revision
        kv = next((kv for kv in page.kvs if kv.key == key), None)
        if kv is not None:
            obj = decode(kv.value, kv.mod_revision)
            if match(obj):
                items.append(obj)
        return {"kind": info.list_kind, "apiVersion": info.api_version,
                "metadata": {"resourceVersion": str(rev)}, "items": items}
    page_size = max(limit, 500) if limit else 0
    more = False
    last_key = ""
    while True:
        try:
            page = await objects.store.list(prefix, start=start, limit=page_size, revision=revision)
        except CompactedError:
            raise errors.Gone("The provided continue parameter is too old to display a consistent list result. "
                              "You can start a new list without the continue parameter.") from None
        revision = revision or page.revision       # etcd answers a pinned range with the current header
        for i, kv in enumerate(page.kvs):
            last_key = kv.key
            item: Any = with_resource_version(kv.value, kv.mod_revision) if raw else None
            if item is None:
                item = decode(kv.value, kv.mod_revision)
                if not match(item):
                    continue
            items.append(item)
            if limit and len(items) == limit:
                more = page.more or i < len(page.kvs) - 1
                break
        else:
            if page.more and page.kvs:
                start = page.kvs[-1].key + "\0"
                continue
        break
    list_meta["resourceVersion"] = str(revision)
    if more:
        list_meta["continue"] = encode_continue(revision, last_key[len(prefix):] + "\0")
    return {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta, "items": items}


def encode_continue(revision: int, start: str) -> str:
    raw = codec.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        data = codec.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        revision, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.BadRequest("continue key is not valid: incorrect encoded start resourceVersion "
                                "(version meta.k8s.io/v1)") from None
    if revision <= 0 or ".." in start or start.startswith("/"):
        raise errors.BadRequest("continue key is not valid: invalid start")
    return revision, prefix + start
