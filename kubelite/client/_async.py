"""The asynchronous client (aiohttp) every component uses; watches are async iterators of events."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from kubelite import kubeconfig
from kubelite.api import codec
from kubelite.api.errors import ServiceUnavailable
from kubelite.client import _rest
from kubelite.client._rest import JSON, PatchType, Request, Resource, WatchEvent, resolve

logger = logging.getLogger(__name__)


class Client:
    """An async Kubernetes client built from a kubeconfig or a base URL.

    Use as ``async with Client.from_kubeconfig() as client:`` (or call :meth:`close`). Namespaced verbs
    given no namespace use the object's ``metadata.namespace`` or the kubeconfig's namespace;
    ``list``/``watch`` with ``namespace=None`` span all namespaces.
    """

    def __init__(self, config: kubeconfig.ClusterConfig, *, timeout: float = 60.0,
                 user_agent: str | None = None) -> None:
        """``user_agent``: what the component calls itself (``kube-scheduler/v1.32.4-kubelite``); its part
        before the first ``/`` is the field manager the apiserver records for writes without one."""
        self.config = config
        self.namespace = config.namespace
        self.timeout = timeout
        self._base = config.server
        self._headers = {"User-Agent": user_agent or _rest.USER_AGENT}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"
        elif config.username is not None:
            cred = base64.b64encode(f"{config.username}:{config.password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {cred}"
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, *, user_agent: str | None = None,
                        **overrides: Any) -> "Client":
        return cls(kubeconfig.load(path, **overrides), user_agent=user_agent)

    @classmethod
    def from_url(cls, server: str, *, namespace: str = "default", token: str | None = None,
                 user_agent: str | None = None) -> "Client":
        return cls(kubeconfig.for_url(server, namespace=namespace, token=token), user_agent=user_agent)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ssl: Any = kubeconfig.ssl_context(self.config) if self.config.is_https else None
            connector = aiohttp.TCPConnector(ssl=ssl if ssl is not None else True, limit=100)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- transport -------------------------------------------------------------------------
    async def send(self, req: Request) -> Any:
        """Send one request and return the decoded body (or raise its ApiError)."""
        session = self._get_session()
        try:
            data = req.body if req.body is None or isinstance(req.body, bytes) else codec.dumps(req.body)
            async with session.request(req.method, self._base + req.path, data=data, headers=req.headers,
                                       timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                body = await resp.read()
                for warning in resp.headers.getall("Warning", ()):
                    logger.warning("%s %s: server warning: %s", req.method, req.path.split("?")[0], warning)
                return _rest.decode(resp.status, resp.headers.get("Content-Type", ""), body, req, codec.loads)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            raise ServiceUnavailable(f"{req.method} {self._base}{req.path.split('?')[0]}: "
                                     f"{type(exc).__name__}: {exc}") from None

    async def stream(self, req: Request) -> AsyncIterator[WatchEvent]:
        """Send a watch request and yield its events until the server ends the stream.

        Raises the ``ApiError`` of an ERROR event (e.g. :class:`~kubelite.api.errors.Gone` for a too-old
        resourceVersion) and :class:`ServiceUnavailable` when the connection breaks.
        """
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=None)
        try:
            async with session.request(req.method, self._base + req.path, headers=req.headers,
                                       timeout=timeout) as resp:
                if resp.status >= 300:
                    raise _rest.error_for(resp.status, await resp.read(), req, codec.loads)
                buf = b""
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        event = _rest.watch_event(line, codec.loads)
                        if event is not None:
                            yield event
                event = _rest.watch_event(buf, codec.loads)
                if event is not None:
                    yield event
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            raise ServiceUnavailable(f"watch {self._base}{req.path.split('?')[0]}: "
                                     f"{type(exc).__name__}: {exc}") from None

    # -- verbs -----------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                      content_type: str = JSON, accept: str = JSON) -> Any:
        return await self.send(_rest.raw(method, path, params=params, body=body, content_type=content_type,
                                         accept=accept))

    async def get(self, res: Resource, name: str, namespace: str | None = None, *, subresource: str | None = None,
                  accept: str = JSON) -> Any:
        return await self.send(_rest.get(resolve(res), name, namespace, self.namespace, subresource=subresource,
                                         accept=accept))

    async def list(self, res: Resource, namespace: str | None = None, label_selector: str | None = None,
                   field_selector: str | None = None, resource_version: str | None = None, limit: int | None = None,
                   continue_: str | None = None, *, accept: str = JSON, extra: dict[str, Any] | None = None) -> Any:
        return await self.send(_rest.list_(resolve(res), namespace, label_selector=label_selector,
                                           field_selector=field_selector, resource_version=resource_version,
                                           limit=limit, continue_=continue_, accept=accept, extra=extra))

    async def create(self, res: Resource, obj: dict[str, Any], namespace: str | None = None, **kw: Any) -> Any:
        return await self.send(_rest.create(resolve(res), obj, namespace, self.namespace, **kw))

    async def update(self, res: Resource, obj: dict[str, Any], subresource: str | None = None,
                     namespace: str | None = None, **kw: Any) -> Any:
        return await self.send(_rest.update(resolve(res), obj, namespace, self.namespace,
                                            subresource=subresource, **kw))

    async def patch(self, res: Resource, name: str, body: Any, namespace: str | None = None,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None, **kw: Any) -> Any:
        return await self.send(_rest.patch(resolve(res), name, body, namespace, self.namespace,
                                           patch_type=patch_type, subresource=subresource,
                                           field_manager=field_manager, force=force, **kw))

    async def delete(self, res: Resource, name: str, namespace: str | None = None,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     **kw: Any) -> Any:
        return await self.send(_rest.delete(resolve(res), name, namespace, self.namespace,
                                            grace_period_seconds=grace_period_seconds,
                                            propagation_policy=propagation_policy, **kw))

    async def create_subresource(self, res: Resource, name: str, sub: str, body: dict[str, Any],
                                 namespace: str | None = None) -> Any:
        return await self.send(_rest.create_subresource(resolve(res), name, sub, body, namespace, self.namespace))

    def watch(self, res: Resource, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              timeout_seconds: int | None = None, allow_bookmarks: bool = True, *,
              accept: str = JSON) -> AsyncIterator[WatchEvent]:
        """``async for event in client.watch(PODS, resource_version=rv): ...``"""
        return self.stream(_rest.watch(resolve(res), namespace, resource_version=resource_version,
                                       label_selector=label_selector, field_selector=field_selector,
                                       timeout_seconds=timeout_seconds, allow_bookmarks=allow_bookmarks,
                                       accept=accept))
