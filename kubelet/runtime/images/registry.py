"""A distribution API v2 client (aiohttp): pull into the store, push out of it.

- Accepts OCI and Docker manifests and indexes; an index resolves to this host's platform.
- Auth: anonymous or credentialed bearer tokens from the ``WWW-Authenticate`` realm, or basic.
- Blobs stream to a temp file, hashed on the way, verified before they are stored; an interrupted
  download resumes with ``Range``; layers download in parallel and unpack as soon as each lands.
- Loopback registries (127.0.0.0/8, localhost, ::1) are plain HTTP, as Docker does; others HTTPS
  unless listed as insecure. With ``offline`` any non-loopback registry fails at once.
- Push: HEAD each blob, else POST an upload session and PUT it (PATCH chunks for big blobs), or mount
  it from another repository of the same registry; then PUT the manifest's exact bytes.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlencode, urljoin

import aiohttp
from yarl import URL

from kubelet.runtime.images import oci
from kubelet.runtime.images.auth import Credentials, lookup, parse_challenge
from kubelet.runtime.images.errors import DigestMismatch, ImageError, OfflineError, RegistryError
from kubelet.runtime.images.reference import Reference, is_loopback_host, parse
from kubelet.runtime.images.store import ImageStore, StoredImage

logger = logging.getLogger(__name__)

Progress = Callable[[str, str, int, int], None]   # (id, status, done bytes, total bytes)
CHUNK = 1 << 20
MONOLITHIC_MAX = 64 << 20   # bigger blobs are pushed in PATCH chunks
PATCH_CHUNK = 16 << 20


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    offline: bool = False
    insecure_registries: tuple[str, ...] = ()
    concurrency: int = 3
    retries: int = 3
    timeout: float = 300.0
    credentials: Mapping[str, Credentials] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path, **overrides: Any) -> "RegistryConfig":
        """The store's ``registries.json`` (``{"offline": true, "insecureRegistries": [...]}``) + overrides.

        ``KUBELITE_OFFLINE=1`` in the environment also means offline (what test harnesses set).
        """
        try:
            raw = json.loads((Path(root) / "registries.json").read_text())
        except FileNotFoundError:
            raw = {}
        except ValueError as exc:
            raise ImageError(f"{root}/registries.json is not valid JSON: {exc}") from None
        values: dict[str, Any] = {"offline": bool(raw.get("offline", False)) or os.environ.get("KUBELITE_OFFLINE") == "1",
                                  "insecure_registries": tuple(raw.get("insecureRegistries", ())),
                                  "concurrency": int(raw.get("concurrency", 3))}
        for k, v in overrides.items():
            if k == "offline":
                values[k] = values[k] or bool(v)
            elif k == "insecure_registries":
                values[k] = tuple(values[k]) + tuple(v)
            else:
                values[k] = v
        return cls(**values)


def _registry_message(status: int, body: bytes) -> str:
    try:
        errs = json.loads(body).get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return body.decode(errors="replace").strip()[:200] or f"HTTP {status}"


def _first(group: BaseExceptionGroup) -> BaseException:
    """The first real error of a TaskGroup's group (what the user needs to read)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


class RegistryClient:
    """One session for one or more pulls/pushes. Use as ``async with RegistryClient(cfg) as c``."""

    def __init__(self, config: RegistryConfig | None = None, progress: Progress | None = None) -> None:
        self.config = config or RegistryConfig()
        self.progress = progress
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: set[str] = set()
        self.downloaded = 0          # bytes received for blobs (a resumed download counts its tail only)

    async def __aenter__(self) -> "RegistryClient":
        self._session = aiohttp.ClientSession(auto_decompress=False,
                                              timeout=aiohttp.ClientTimeout(total=None, sock_read=60,
                                                                            sock_connect=15))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------------------- transport
    def check_allowed(self, ref: Reference) -> None:
        host = ref.registry_host
        if self.config.offline and not is_loopback_host(host):
            raise OfflineError(f"offline mode: not contacting {ref.domain} for {ref} "
                               "(only loopback registries are reachable; import the image or drop --offline)")

    def _base(self, host: str) -> str:
        plain = is_loopback_host(host) or host in self.config.insecure_registries
        return f"{'http' if plain else 'https'}://{host}"

    def _emit(self, id_: str, status: str, done: int = 0, total: int = 0) -> None:
        if self.progress is not None:
            self.progress(id_, status, done, total)

    async def _auth(self, ref: Reference, challenge: str, actions: str) -> None:
        assert self._session is not None
        scheme, params = parse_challenge(challenge)
        creds = lookup(self.config.credentials, ref.domain)
        scope = f"repository:{ref.path}:{actions}"
        if scheme == "basic":
            if creds is None or creds.basic_header() is None:
                raise RegistryError(f"{ref.domain} wants a user name and password (none found in "
                                    "~/.docker/config.json or the pod's imagePullSecrets)", 401)
            self._basic.add(ref.registry_host)
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{ref.domain}: unsupported authentication challenge {challenge!r}", 401)
        if creds is not None and creds.registry_token:
            self._tokens[(ref.registry_host, scope)] = creds.registry_token
            return
        realm = params["realm"]
        if self.config.offline and not is_loopback_host(URL(realm).host or ""):
            raise OfflineError(f"offline mode: not contacting the token service {realm}")
        query = {k: v for k, v in (("service", params.get("service")), ("scope", scope)) if v}
        headers = {}
        method, data = "GET", None
        if creds is not None and creds.identity_token:
            method = "POST"
            data = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "service": params.get("service", ""), "scope": scope, "client_id": "kubelite"}
        elif creds is not None and (basic := creds.basic_header()):
            headers["Authorization"] = basic
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        async with self._session.request(method, url, headers=headers, data=data) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RegistryError(f"token request to {realm} failed: {_registry_message(resp.status, body)}",
                                    resp.status)
            tok = json.loads(body)
        self._tokens[(ref.registry_host, scope)] = tok.get("token") or tok.get("access_token") or ""

    def _headers(self, ref: Reference, actions: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        tok = self._tokens.get((ref.registry_host, f"repository:{ref.path}:{actions}"))
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        elif ref.registry_host in self._basic:
            creds = lookup(self.config.credentials, ref.domain)
            if creds is not None and (basic := creds.basic_header()):
                headers["Authorization"] = basic
        return headers

    async def _request(self, method: str, ref: Reference, url: str, *, actions: str = "pull",
                       headers: Mapping[str, str] | None = None, data: Any = None,
                       allow: tuple[int, ...] = (200,)) -> tuple[aiohttp.ClientResponse, bytes | None]:
        """One call with the auth dance; returns (response, body) – body None when the caller streams.

        ``url`` is a path (``/v2/...``) or absolute. Statuses outside ``allow`` raise RegistryError.
        """
        assert self._session is not None
        self.check_allowed(ref)
        full = url if url.startswith("http") else self._base(ref.registry_host) + url
        for attempt in range(2):
            try:
                resp = await self._session.request(method, full, headers=self._headers(ref, actions, headers),
                                                   data=data() if callable(data) else data)
            except aiohttp.ClientError as exc:
                raise RegistryError(f"cannot reach {ref.registry_host}: {exc}") from None
            if resp.status == 401 and attempt == 0 and "WWW-Authenticate" in resp.headers:
                challenge = resp.headers["WWW-Authenticate"]
                resp.release()
                await self._auth(ref, challenge, actions)
                continue
            if resp.status in allow:
                return resp, None
            body = await resp.read()
            resp.release()
            msg = _registry_message(resp.status, body)
            if resp.status in (401, 403):
                msg = f"pull access denied or authorization failed: {msg}"
            raise RegistryError(f"{method} {ref.name}: {msg} (HTTP {resp.status})", resp.status)
        raise RegistryError(f"{ref.registry_host}: authentication failed", 401)

    # ------------------------------------------------------------------------------------ pull
    async def get_manifest(self, ref: Reference, obj: str | None = None) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of the manifest or index ``obj`` (default: the ref's tag/digest)."""
        obj = obj or ref.object
        resp, _ = await self._request("GET", ref, f"/v2/{ref.path}/manifests/{obj}",
                                      headers={"Accept": oci.ACCEPT_MANIFESTS})
        async with resp:
            body = await resp.read()
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        digest = oci.sha256_digest(body)
        if obj.startswith("sha256:") and digest != obj:
            raise DigestMismatch(f"manifest {obj} from {ref.registry_host} hashes to {digest}: refused")
        try:
            mt = json.loads(body).get("mediaType") or ctype
        except ValueError:
            raise RegistryError(f"{ref}: the registry sent a manifest that is not JSON") from None
        return body, mt, digest

    async def fetch_blob(self, store: ImageStore, ref: Reference, desc: Mapping[str, Any]) -> None:
        """Download the blob ``desc`` into the store (resuming a partial file), verified."""
        digest, size = str(desc["digest"]), int(desc.get("size", -1))
        if store.blobs.has(digest):
            self._emit(digest, "Already exists", size, size)
            return
        store.blobs.tmp.mkdir(parents=True, exist_ok=True)
        partial = store.blobs.tmp / (digest[7:] + ".partial")
        # one download per blob at a time, across processes (the kubelet and a `kubelite image pull`)
        lock_fd = os.open(store.blobs.tmp / (digest[7:] + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, lock_fd, fcntl.LOCK_EX)
            if store.blobs.has(digest):
                self._emit(digest, "Already exists", size, size)
                return
            await self._fetch_locked(store, ref, digest, size, partial)
        finally:
            os.close(lock_fd)   # the lock file stays (unlinking it would let a third process in); prune clears tmp/

    async def _fetch_locked(self, store: ImageStore, ref: Reference, digest: str, size: int, partial: Path) -> None:
        last: Exception | None = None
        for _ in range(self.config.retries):
            resumed = partial.exists() and partial.stat().st_size > 0
            try:
                await self._download(ref, digest, size, partial)
                await asyncio.to_thread(store.blobs.commit, partial, digest, size)
                self._emit(digest, "Download complete", size, size)
                return
            except DigestMismatch:
                if not resumed:
                    raise
                logger.info("resumed download of %s did not verify, starting over", digest[:19])
                last = None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                last = exc
                logger.info("download of %s interrupted (%s), resuming", digest[:19], exc)
        raise RegistryError(f"download of {digest} from {ref.registry_host} kept failing: {last}")

    async def _download(self, ref: Reference, digest: str, size: int, partial: Path) -> None:
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have and (size < 0 or have < size) else {}
        resp, _ = await self._request("GET", ref, f"/v2/{ref.path}/blobs/{digest}", headers=headers,
                                      allow=(200, 206))
        async with resp:
            mode = "ab" if resp.status == 206 else "wb"
            done = have if resp.status == 206 else 0
            # opened on the loop (a local open, no wait): a worker thread's open would leak the file when
            # a sibling layer's failure cancels this download during it
            f = open(partial, mode)  # noqa: SIM115 - closed in the finally below
            try:
                buf = bytearray()
                async for chunk in resp.content.iter_chunked(CHUNK):
                    buf += chunk
                    self.downloaded += len(chunk)
                    if len(buf) >= CHUNK:
                        await asyncio.to_thread(f.write, bytes(buf))
                        done += len(buf)
                        buf.clear()
                        self._emit(digest, "Downloading", done, size)
                if buf:
                    await asyncio.to_thread(f.write, bytes(buf))
            finally:
                await asyncio.to_thread(f.close)

    async def pull(self, store: ImageStore, ref_text: str) -> StoredImage:
        """Pull ``ref_text`` into ``store`` and name it; returns the stored image.

        Raises:
            OfflineError, RegistryError (with the registry's message), DigestMismatch, InvalidReference.
        """
        ref = parse(ref_text)
        try:
            return await self._pull(store, ref)
        except RegistryError as exc:
            raise type(exc)(f'failed to pull "{ref}": {exc}', exc.status) from None

    async def _pull(self, store: ImageStore, ref: Reference) -> StoredImage:
        self.check_allowed(ref)
        top, mt, top_digest = await self.get_manifest(ref)
        extra: tuple[bytes, ...] = ()
        mbytes = top
        if mt in oci.INDEX_TYPES:
            try:
                desc = oci.pick_platform(json.loads(top))
            except LookupError as exc:
                raise RegistryError(f"{ref}: {exc}") from None
            mbytes, mt, _ = await self.get_manifest(ref, desc["digest"])
            extra = (top,)
        if mt not in oci.MANIFEST_TYPES:
            raise RegistryError(f"{ref}: unsupported manifest type {mt!r}")
        manifest = json.loads(mbytes)
        with store.ingesting():
            await self.fetch_blob(store, ref, manifest["config"])
            config = await asyncio.to_thread(store.load_json, manifest["config"]["digest"])
            diff_ids = config.get("rootfs", {}).get("diff_ids", [])
            if len(diff_ids) != len(manifest.get("layers", [])):
                raise RegistryError(f"{ref}: config has {len(diff_ids)} diff_ids for "
                                    f"{len(manifest.get('layers', []))} layers")
            sem = asyncio.Semaphore(self.config.concurrency)
            # One unpack at a time: unpacking is syscall-bound Python; two at once in threads fight over
            # the GIL (each syscall waits for the other's switch interval) and take longer than in turn.
            unpacking = asyncio.Lock()

            async def layer(desc: Mapping[str, Any], diff_id: str) -> None:
                if store.layer_path(diff_id).is_dir() and store.blobs.has(desc["digest"]):
                    self._emit(desc["digest"], "Already exists", 0, 0)
                    return
                async with sem:
                    await self.fetch_blob(store, ref, desc)
                async with unpacking:
                    self._emit(desc["digest"], "Extracting", 0, 0)
                    await asyncio.to_thread(store.ensure_layer, dict(desc), diff_id)
                self._emit(desc["digest"], "Pull complete", 0, 0)

            try:
                async with asyncio.TaskGroup() as tg:
                    for desc, diff_id in zip(manifest.get("layers", []), diff_ids):
                        tg.create_task(layer(desc, diff_id))
            except* ImageError as eg:
                raise _first(eg) from None
            name = f"{ref.name}@{ref.digest}" if ref.digest else str(ref)
            return await asyncio.to_thread(store.commit_image, mbytes, [name], top_digest, extra, mt)

    # ------------------------------------------------------------------------------------ push
    async def _blob_exists(self, ref: Reference, digest: str) -> bool:
        resp, _ = await self._request("HEAD", ref, f"/v2/{ref.path}/blobs/{digest}", actions="pull,push",
                                      allow=(200, 404))
        resp.release()
        return resp.status == 200

    async def _upload(self, ref: Reference, path: Path, digest: str, mount_from: str | None) -> None:
        query = f"?{urlencode({'mount': digest, 'from': mount_from})}" if mount_from else ""
        resp, _ = await self._request("POST", ref, f"/v2/{ref.path}/blobs/uploads/{query}", actions="pull,push",
                                      allow=(201, 202))
        resp.release()
        if resp.status == 201:
            self._emit(digest, "Mounted", 0, 0)
            return
        base = self._base(ref.registry_host)
        location = urljoin(base + "/", resp.headers["Location"])
        size = path.stat().st_size
        if size > MONOLITHIC_MAX:
            start = 0
            with path.open("rb") as f:
                while start < size:
                    chunk = await asyncio.to_thread(f.read, PATCH_CHUNK)
                    end = start + len(chunk) - 1
                    resp, _ = await self._request(
                        "PATCH", ref, location, actions="pull,push", data=chunk, allow=(202,),
                        headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end}"})
                    resp.release()
                    location = urljoin(base + "/", resp.headers["Location"])
                    start = end + 1
                    self._emit(digest, "Pushing", start, size)
            body: Any = b""
        else:
            body = await asyncio.to_thread(path.read_bytes)
        sep = "&" if "?" in location else "?"
        resp, _ = await self._request("PUT", ref, f"{location}{sep}{urlencode({'digest': digest})}",
                                      actions="pull,push", data=body, allow=(201, 204),
                                      headers={"Content-Type": "application/octet-stream"})
        resp.release()
        self._emit(digest, "Pushed", size, size)

    async def push(self, store: ImageStore, local: str, remote: str | None = None) -> str:
        """Push the stored image ``local`` as ``remote`` (default: its own name); returns the manifest digest."""
        img = store.resolve(local)
        ref = parse(remote or local)
        if ref.digest and ref.digest != img.manifest_digest:
            raise ImageError(f"cannot push {local} as {ref}: the digest differs from the image's")
        self.check_allowed(ref)
        same_host = [parse(n) for n in img.names]
        mount_from = next((r.path for r in same_host if r.domain == ref.domain and r.path != ref.path), None)
        sem = asyncio.Semaphore(self.config.concurrency)

        async def one(digest: str) -> None:
            async with sem:
                if await self._blob_exists(ref, digest):
                    self._emit(digest, "Layer already exists", 0, 0)
                    return
                await self._upload(ref, store.blobs.path(digest), digest, mount_from)

        try:
            async with asyncio.TaskGroup() as tg:
                for digest in [layer.digest for layer in img.layers] + [img.id]:
                    tg.create_task(one(digest))
        except* ImageError as eg:
            raise _first(eg) from None
        mbytes = await asyncio.to_thread(store.blobs.read, img.manifest_digest)
        mt = img.media_type
        resp, _ = await self._request("PUT", ref, f"/v2/{ref.path}/manifests/{ref.object}", actions="pull,push",
                                      data=mbytes, headers={"Content-Type": mt}, allow=(201,))
        resp.release()
        got = resp.headers.get("Docker-Content-Digest", img.manifest_digest)
        if got != img.manifest_digest:
            raise DigestMismatch(f"registry stored the manifest as {got}, expected {img.manifest_digest}")
        return img.manifest_digest
