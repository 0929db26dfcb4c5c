"""The apiserver's connections to kubelets: ``nodes/<n>/proxy/<path>``, ``pods/<p>/log``, ``pods/<p>/exec`` and
``pods/<p>/portforward``.

The kubelet's address is the Node's ``InternalIP`` (else ``Hostname``) and port
``status.daemonEndpoints.kubeletEndpoint.Port``, as kube-apiserver finds it. Responses stream through
unchanged (logs with ``follow``, metrics pages); exec is a WebSocket relayed frame by frame, with the
subprotocol the kubelet chose (``v5.channel.k8s.io``; ``SPDY/3.1+portforward.k8s.io`` for port-forward,
whose SPDY frames pass through unread). An SPDY/3.1 upgrade (exec from kubectl < 1.30, port-forward from
kubectl < 1.31) is passed on to the kubelet as an upgrade too, and after its 101 the two connections are
spliced byte for byte (:mod:`kubelite.httpupgrade`); a refusal comes back as the kubelet's Status. A kubelet that cannot be reached is a 503 Status.
A bearer token for kubelets off loopback comes from ``$KUBELITE_KUBELET_TOKEN_FILE``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from apiserver.handlers.common import json_response, state
from kubelite import httpupgrade
from kubelite.api import errors
from kubelite.api.resources import NODES, PODS

logger = logging.getLogger(__name__)

CLIENT = web.AppKey("kubelite_kubelet_client", aiohttp.ClientSession)
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host", "authorization", "content-length"}
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


def kubelet_address(node: dict[str, Any]) -> tuple[str, int]:
    """(host, port) of a Node's kubelet API. Raises ServiceUnavailable when the Node does not say."""
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addrs.get("InternalIP") or addrs.get("Hostname")
    name = (node.get("metadata") or {}).get("name", "")
    if not port or not host:
        raise errors.ServiceUnavailable(f"no kubelet endpoint known for node {name!r}")
    return host, int(port)


def _base(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _token_headers() -> dict[str, str]:
    path = os.environ.get("KUBELITE_KUBELET_TOKEN_FILE", "")
    if path and os.path.exists(path):
        with open(path) as fh:
            return {"Authorization": f"Bearer {fh.read().strip()}"}
    return {}


async def _node_base(request: web.Request, node_name: str) -> str:
    return _base(*await _node_address(request, node_name))


async def _node_address(request: web.Request, node_name: str) -> tuple[str, int]:
    node = await state(request).objects.get(NODES, None, node_name)
    return kubelet_address(node)


async def _session(app: web.Application) -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5),
                                     auto_decompress=False) as s:
        app[CLIENT] = s
        yield


async def _forward(request: web.Request, url: str, query: Any | None = None) -> web.StreamResponse:
    """Send ``request`` on to ``url`` and stream the answer back."""
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
    headers.update(_token_headers())
    body = await request.read() if request.can_read_body else None
    session = request.app[CLIENT]
    try:
        async with session.request(request.method, url, params=request.query if query is None else query,
                                   headers=headers, data=body, allow_redirects=False) as up:
            resp = web.StreamResponse(status=up.status, reason=up.reason)
            for k, v in up.headers.items():
                if k.lower() not in _HOP:
                    resp.headers.add(k, v)
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp
    except aiohttp.ClientConnectionError as e:
        raise errors.ServiceUnavailable(f"error trying to reach the kubelet at {url.split('/', 3)[2]}: {e}") from e
    except ConnectionResetError:
        raise


async def node_proxy(request: web.Request) -> web.StreamResponse:
    """``/api/v1/nodes/{name}/proxy[/{path}]`` → ``http://<kubelet>/{path}``."""
    m = request.match_info
    base = await _node_base(request, m["name"])
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _relay_ws(request, f"{base}/{m.get('path', '')}", list(request.query.items()))
    return await _forward(request, f"{base}/{m.get('path', '')}")


async def _pod_and_container(request: web.Request) -> tuple[dict[str, Any], str, str]:
    m = request.match_info
    pod = await state(request).objects.get(PODS, m["ns"], m["name"])
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    inits = [c.get("name") for c in spec.get("initContainers") or []]
    container = request.query.get("container", "")
    if not container:
        default = ((pod.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        if default in names:
            container = default
        elif len(names) == 1:
            container = names[0]
        else:
            raise errors.BadRequest(f"a container name must be specified for pod {m['name']}, choose one of: "
                                    f"[{' '.join(names)}]" + (f" or one of the init containers: [{' '.join(inits)}]"
                                                              if inits else ""))
    if container not in names + inits:
        raise errors.BadRequest(f"container {container} is not valid for pod {m['name']}")
    node = spec.get("nodeName")
    if not node:
        raise errors.BadRequest(f'pod {m["name"]} does not have a host assigned')
    return pod, node, container


async def pod_log(request: web.Request) -> web.StreamResponse:
    """``pods/{name}/log`` → the kubelet's ``/containerLogs/{ns}/{pod}/{container}``."""
    pod, node, container = await _pod_and_container(request)
    m = request.match_info
    base = await _node_base(request, node)
    query = [(k, v) for k, v in request.query.items() if k != "container"]
    return await _forward(request, f"{base}/containerLogs/{m['ns']}/{m['name']}/{container}", query)


async def pod_exec(request: web.Request) -> web.StreamResponse:
    """``pods/{name}/exec`` → the kubelet's ``/exec/{ns}/{pod}/{container}`` (WebSocket relayed; SPDY gets the
    kubelet's refusal Status)."""
    pod, node, container = await _pod_and_container(request)
    m = request.match_info
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.BadRequest(f"cannot exec into a container in a completed pod; current phase is {phase}")
    addr = await _node_address(request, node)
    path = f"/exec/{m['ns']}/{m['name']}/{container}"
    query = [(k, v) for k, v in request.query.items() if k != "container"]
    if _is_spdy(request):
        return await _relay_upgrade(request, addr, path, query)
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return await _forward(request, _base(*addr) + path, query)
    return await _relay_ws(request, _base(*addr) + path, query)


async def pod_portforward(request: web.Request) -> web.StreamResponse:
    """``pods/{name}/portforward`` → the kubelet's ``/portForward/{ns}/{pod}`` (the WebSocket tunnel relayed
    message by message)."""
    m = request.match_info
    pod = await state(request).objects.get(PODS, m["ns"], m["name"])
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.BadRequest(f'pod {m["name"]} does not have a host assigned')
    addr = await _node_address(request, node)
    path = f"/portForward/{m['ns']}/{m['name']}"
    if _is_spdy(request):
        return await _relay_upgrade(request, addr, path, list(request.query.items()))
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return await _forward(request, _base(*addr) + path, list(request.query.items()))
    return await _relay_ws(request, _base(*addr) + path, list(request.query.items()))


def _is_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/")


async def _relay_upgrade(request: web.Request, addr: tuple[str, int], path: str, query: list[tuple[str, str]]
                         ) -> web.StreamResponse:
    """Pass an SPDY upgrade on to the kubelet; after its 101, splice the two connections."""
    headers = [(k, v) for k, v in request.headers.items()
               if k.lower() not in ("host", "content-length", "transfer-encoding", "authorization")]
    headers += list(_token_headers().items())
    target = path + (f"?{urlencode(query)}" if query else "")
    try:
        _, got, upstream = await httpupgrade.dial(*addr, request.method, target, headers)
    except (OSError, asyncio.TimeoutError) as e:
        raise errors.ServiceUnavailable(f"error trying to reach the kubelet at {addr[0]}:{addr[1]}: {e}") from e
    if isinstance(upstream, httpupgrade.Refusal):
        return web.Response(status=upstream.status, body=upstream.body,
                            content_type=upstream.headers.get("content-type", "application/json").split(";")[0])
    try:
        switch = {k: got[k.lower()][0] for k in ("Upgrade", "X-Stream-Protocol-Version") if k.lower() in got}
        resp, client = await httpupgrade.accept(request, switch)

        async def pipe(src: httpupgrade.RawConnection, dst: httpupgrade.RawConnection) -> None:
            while data := await src.read():
                await dst.write(data)
        legs = [asyncio.ensure_future(pipe(client, upstream)), asyncio.ensure_future(pipe(upstream, client))]
        try:
            await asyncio.wait(legs, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for leg in legs:
                leg.cancel()
            await asyncio.gather(*legs, return_exceptions=True)
            client.close()
        return resp
    finally:
        upstream.close()


async def _relay_ws(request: web.Request, url: str, query: list[tuple[str, str]]) -> web.StreamResponse:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    session = request.app[CLIENT]
    try:
        upstream = await session.ws_connect(url.replace("http://", "ws://", 1), params=query,
                                            protocols=offered or EXEC_PROTOCOLS, headers=_token_headers(),
                                            autoping=True, heartbeat=None, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as e:
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": e.message or "upgrade refused by the kubelet", "reason": "BadRequest",
                              "code": e.status}, status=e.status)
    except aiohttp.ClientConnectionError as e:
        raise errors.ServiceUnavailable(f"error trying to reach the kubelet: {e}") from e
    async with upstream:
        ws = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=True,
                                   max_msg_size=0)
        await ws.prepare(request)
        async with asyncio.TaskGroup() as tg:
            down = tg.create_task(_pump(upstream, ws))
            up = tg.create_task(_pump(ws, upstream))
            done, _ = await asyncio.wait([down, up], return_when=asyncio.FIRST_COMPLETED)
            if down in done:            # the kubelet finished: the client's close comes back or we stop
                up.cancel()
            else:
                await upstream.close()
                down.cancel()
        await ws.close()
        return ws


async def _pump(src: Any, dst: Any) -> None:
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        else:
            break


def add_routes(app: web.Application) -> None:
    """Register the proxy routes (before the generic ``/api/v1/{tail}`` route) and the kubelet client."""
    app.cleanup_ctx.append(_session)
    r = app.router
    r.add_route("*", "/api/v1/nodes/{name}/proxy", node_proxy)
    r.add_route("*", "/api/v1/nodes/{name}/proxy/{path:.*}", node_proxy)
    r.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", pod_log)
    r.add_get("/api/v1/namespaces/{ns}/pods/{name}/exec", pod_exec)
    r.add_post("/api/v1/namespaces/{ns}/pods/{name}/exec", pod_exec)
    r.add_get("/api/v1/namespaces/{ns}/pods/{name}/portforward", pod_portforward)
    r.add_post("/api/v1/namespaces/{ns}/pods/{name}/portforward", pod_portforward)
