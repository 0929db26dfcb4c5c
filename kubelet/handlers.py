"""Running a probe's or a lifecycle hook's handler: exec in the container, httpGet, tcpSocket.

Shared by the prober (liveness/readiness/startup) and the lifecycle hooks (postStart/preStop), as
Kubernetes' ``prober`` and ``lifecycle`` packages share their handler runners. HTTP goes to the pod
IP (or ``host``) and counts 200–399 as success; a named port is looked up in the container's ports.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Mapping

import aiohttp

from kubelet.cri import CriError, RuntimeService

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HandlerResult:
    ok: bool
    message: str = ""


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p.get("containerPort", 0))
    raise ValueError(f"port {port!r} not found in the container's ports")


async def run_handler(handler: Mapping[str, Any], *, runtime: RuntimeService, container_id: str,
                      container: Mapping[str, Any], pod_ip: str, timeout: float) -> HandlerResult:
    """Run one handler (``exec``/``httpGet``/``tcpSocket``/``sleep``) once, within ``timeout`` seconds."""
    try:
        if "exec" in handler:
            cmd = list((handler["exec"] or {}).get("command") or [])
            res = await asyncio.wait_for(runtime.exec_sync(container_id, cmd, timeout), timeout + 1)
            out = (res.stdout + res.stderr).decode(errors="replace")[:1024]
            if res.exit_code == 0:
                return HandlerResult(True, out)
            return HandlerResult(False, f"command {cmd!r} exited with {res.exit_code}: {out}".strip())
        if "httpGet" in handler:
            return await _http_get(handler["httpGet"], container, pod_ip, timeout)
        if "tcpSocket" in handler:
            tcp = handler["tcpSocket"]
            host = tcp.get("host") or pod_ip
            port = resolve_port(tcp.get("port"), container)
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            return HandlerResult(True)
        if "sleep" in handler:
            await asyncio.sleep(min(float(handler["sleep"].get("seconds", 0)), timeout))
            return HandlerResult(True)
        return HandlerResult(False, "handler has no action")
    except asyncio.TimeoutError:
        return HandlerResult(False, f"timeout after {timeout:g}s")
    except (OSError, ValueError, CriError, aiohttp.ClientError) as exc:
        return HandlerResult(False, str(exc) or type(exc).__name__)


async def _http_get(spec: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str,
                    timeout: float) -> HandlerResult:
    scheme = str(spec.get("scheme") or "HTTP").lower()
    host = spec.get("host") or pod_ip
    port = resolve_port(spec.get("port"), container)
    path = spec.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    host_part = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{host_part}:{port}{path}"
    headers = {"User-Agent": "kube-probe/1.32"}
    for h in spec.get("httpHeaders") or []:
        headers[h.get("name", "")] = h.get("value", "")
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        async with session.get(url, headers=headers, allow_redirects=False, ssl=False) as resp:
            body = (await resp.content.read(10 * 1024)).decode(errors="replace")
            if 200 <= resp.status < 400:
                return HandlerResult(True, body)
            return HandlerResult(False, f"HTTP probe failed with statuscode: {resp.status}")
