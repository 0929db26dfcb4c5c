"""The light blocking client for the CLI: HTTP/1.1 over one kept-alive socket, no heavy imports.

``http.client`` pulls in ``email`` and ``ssl`` (≈35 ms here), asyncio+aiohttp ≈300 ms; a CLI command
must start in about the time ``kubectl`` does. So this speaks the little HTTP/1.1 the apiserver needs
(Content-Length and chunked bodies, keep-alive) over a plain socket and imports :mod:`ssl` only for an
``https://`` server. Requests and responses go through the shared ``kubelite.client._rest`` code.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

from kubelite import kubeconfig
from kubelite.api.errors import ServiceUnavailable
from kubelite.client import _rest
from kubelite.client._rest import JSON, PatchType, Request, Resource, WatchEvent, resolve


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_loads = json.loads


def split_url(url: str) -> tuple[str, str, int | None, str]:
    """``(scheme, host, port, path)`` of a server URL (``[v6]`` hosts too) without importing urllib."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "http", url
    netloc, slash, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2]
    port: int | None = None
    if netloc.startswith("["):
        host, _, tail = netloc[1:].partition("]")
        if tail.startswith(":") and tail[1:]:
            port = int(tail[1:])
    else:
        host, colon, port_text = netloc.partition(":")
        if colon and port_text:
            port = int(port_text)
    return scheme.lower(), host, port, (slash + path).rstrip("/")


def _warning_text(value: str) -> str:
    """The text of a ``Warning: 299 - "text"`` header (as kubectl prints it)."""
    parts = value.split(" ", 2)
    if len(parts) == 3 and parts[0].isdigit():
        text = parts[2].strip()
        if text.startswith('"') and text.endswith('"'):
            text = text[1:-1].replace('\\"', '"')
        return text
    return value


class _Response:
    """Status, headers and a body reader for one HTTP/1.1 response on a buffered socket file."""

    def __init__(self, fp: Any) -> None:
        self.fp = fp
        line = fp.readline(65537)
        if not line:
            raise ConnectionResetError("the server closed the connection")
        parts = line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ConnectionError(f"malformed HTTP status line {line[:80]!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        self.warnings: list[str] = []
        while True:
            h = fp.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            key = k.strip().lower()
            if key == "warning":
                self.warnings.append(_warning_text(v.strip()))
            self.headers[key] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self.length = int(length) if length is not None and not self.chunked else None
        self.will_close = self.headers.get("connection", "").lower() == "close" or (
            not self.chunked and self.length is None)

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives (one chunk at a time for chunked responses)."""
        if self.chunked:
            while True:
                size_line = self.fp.readline(65537)
                if not size_line:
                    raise ConnectionResetError("the server closed the connection mid-body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.fp.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = self.fp.read(size)
                self.fp.readline(65537)
                yield data
        elif self.length is not None:
            if self.length:
                yield self.fp.read(self.length)
        else:
            while data := self.fp.read1(65536):
                yield data

    def read(self) -> bytes:
        return b"".join(self.chunks())


class SyncClient:
    """A blocking Kubernetes client with the same verbs as :class:`kubelite.client.Client`.

    Namespaced verbs given no namespace use the object's ``metadata.namespace`` or the kubeconfig's
    namespace; ``list``/``watch`` with ``namespace=None`` span all namespaces.
    """

    def __init__(self, config: kubeconfig.ClusterConfig, *, timeout: float | None = 60.0) -> None:
        self.config = config
        self.namespace = config.namespace
        self.timeout = timeout
        self.on_warning: Callable[[str], None] | None = None   # server Warning headers (the CLI prints them)
        scheme, host, port, path = split_url(config.server)
        self._https = scheme == "https"
        self._host = host or "localhost"
        self._port = port or (443 if self._https else 80)
        self._prefix = path
        netloc = f"[{self._host}]" if ":" in self._host else self._host
        self._headers = {"Host": f"{netloc}:{self._port}" if port else netloc, "User-Agent": _rest.USER_AGENT}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"
        elif config.username is not None:
            import base64
            cred = base64.b64encode(f"{config.username}:{config.password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {cred}"
        self._sock: socket.socket | None = None
        self._fp: Any = None

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, **overrides: Any) -> "SyncClient":
        return cls(kubeconfig.load(path, **overrides))

    @classmethod
    def from_url(cls, server: str, *, namespace: str = "default", token: str | None = None) -> "SyncClient":
        return cls(kubeconfig.for_url(server, namespace=namespace, token=token))

    # -- transport -------------------------------------------------------------------------
    def _connect(self, timeout: float | None) -> None:
        try:
            # an ASCII host as bytes: getaddrinfo then skips the idna codec (and its imports)
            host: str | bytes = self._host.encode() if self._host.isascii() else self._host
            sock = socket.create_connection((host, self._port), timeout=self.timeout)  # type: ignore[arg-type]
        except ConnectionRefusedError:
            raise ServiceUnavailable(f"The connection to the server {self._host}:{self._port} was refused - "
                                     "did you specify the right host or port?") from None
        except OSError as exc:
            raise ServiceUnavailable(f"Unable to connect to the server: dial tcp {self._host}:{self._port}: "
                                     f"{exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._https:
            try:
                sock = kubeconfig.ssl_context(self.config).wrap_socket(sock, server_hostname=self._host)
            except OSError as exc:          # ssl.SSLError and friends
                sock.close()
                raise ServiceUnavailable(f"Unable to connect to the server: {getattr(exc, 'reason', None) or exc}") \
                    from None
        sock.settimeout(timeout)
        self._sock, self._fp = sock, sock.makefile("rb")

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._fp = None

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exchange(self, req: Request, timeout: float | None) -> _Response:
        head = [f"{req.method} {self._prefix}{req.path} HTTP/1.1"]
        headers = dict(self._headers)
        headers.update(req.headers)
        body = req.body if req.body is None or isinstance(req.body, bytes) else _dumps(req.body)
        headers["Content-Length"] = str(len(body or b""))
        head.extend(f"{k}: {v}" for k, v in headers.items())
        wire = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")
        for attempt in (0, 1):
            fresh = self._sock is None
            if fresh:
                self._connect(timeout)
            else:
                assert self._sock is not None
                self._sock.settimeout(timeout)
            try:
                assert self._sock is not None
                self._sock.sendall(wire)
                return _Response(self._fp)
            except (ConnectionError, BrokenPipeError) as exc:
                self.close()
                if fresh or attempt:     # a kept-alive socket may have been closed by the server: retry once
                    raise ServiceUnavailable(f"lost the connection to {self._host}:{self._port}: {exc}") from None
            except TimeoutError:
                self.close()
                raise ServiceUnavailable("Unable to connect to the server: net/http: request canceled "
                                         "(Client.Timeout exceeded while awaiting headers)") from None
            except OSError as exc:
                self.close()
                raise ServiceUnavailable(f"Unable to connect to the server: {exc.strerror or exc}") from None
        raise AssertionError("unreachable")

    def send(self, req: Request) -> Any:
        """Send one request and return the decoded body (or raise its ApiError)."""
        resp = self._exchange(req, self.timeout)
        try:
            body = resp.read()
        except (OSError, ValueError) as exc:
            self.close()
            raise ServiceUnavailable(f"reading the response from {self._host}:{self._port}: {exc}") from None
        if self.on_warning is not None:
            for text in resp.warnings:
                self.on_warning(text)
        if resp.will_close:
            self.close()
        return _rest.decode(resp.status, resp.headers.get("content-type", ""), body, req, _loads)

    def stream(self, req: Request) -> Iterator[WatchEvent]:
        """Send a watch request and yield its events until the server ends the stream."""
        resp = self._exchange(req, None)
        if resp.status >= 300:
            body = resp.read()
            self.close()
            raise _rest.error_for(resp.status, body, req, _loads)
        buf = b""
        try:
            for chunk in resp.chunks():
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    event = _rest.watch_event(line, _loads)
                    if event is not None:
                        yield event
            if buf.strip():
                event = _rest.watch_event(buf, _loads)
                if event is not None:
                    yield event
        except (OSError, ValueError) as exc:
            self.close()
            raise ServiceUnavailable(f"watch stream from {self._host}:{self._port} broke: {exc}") from None
        finally:
            # an abandoned stream leaves unread bytes on the socket: never reuse it
            self.close()

    def stream_bytes(self, req: Request) -> Iterator[bytes]:
        """Send ``req`` and yield its body as it arrives (``logs -f``); an error status raises its ApiError."""
        resp = self._exchange(req, None)
        if resp.status >= 300:
            body = resp.read()
            self.close()
            raise _rest.error_for(resp.status, body, req, _loads)
        try:
            yield from resp.chunks()
        except (OSError, ValueError) as exc:
            raise ServiceUnavailable(f"stream from {self._host}:{self._port} broke: {exc}") from None
        finally:
            self.close()       # never reuse a socket whose body may be half read

    # -- verbs -----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                content_type: str = JSON, accept: str = JSON) -> Any:
        return self.send(_rest.raw(method, path, params=params, body=body, content_type=content_type, accept=accept))

    def get(self, res: Resource, name: str, namespace: str | None = None, *, subresource: str | None = None,
            accept: str = JSON) -> Any:
        return self.send(_rest.get(resolve(res), name, namespace, self.namespace, subresource=subresource,
                                   accept=accept))

    def list(self, res: Resource, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, resource_version: str | None = None, limit: int | None = None,
             continue_: str | None = None, *, accept: str = JSON, extra: dict[str, Any] | None = None) -> Any:
        return self.send(_rest.list_(resolve(res), namespace, label_selector=label_selector,
                                     field_selector=field_selector, resource_version=resource_version, limit=limit,
                                     continue_=continue_, accept=accept, extra=extra))

    def create(self, res: Resource, obj: dict[str, Any], namespace: str | None = None, **kw: Any) -> Any:
        return self.send(_rest.create(resolve(res), obj, namespace, self.namespace, **kw))

    def update(self, res: Resource, obj: dict[str, Any], subresource: str | None = None,
               namespace: str | None = None, **kw: Any) -> Any:
        return self.send(_rest.update(resolve(res), obj, namespace, self.namespace, subresource=subresource, **kw))

    def patch(self, res: Resource, name: str, body: Any, namespace: str | None = None,
              patch_type: PatchType = "merge", subresource: str | None = None, field_manager: str | None = None,
              force: bool | None = None, **kw: Any) -> Any:
        return self.send(_rest.patch(resolve(res), name, body, namespace, self.namespace, patch_type=patch_type,
                                     subresource=subresource, field_manager=field_manager, force=force, **kw))

    def delete(self, res: Resource, name: str, namespace: str | None = None, grace_period_seconds: int | None = None,
               propagation_policy: str | None = None, **kw: Any) -> Any:
        return self.send(_rest.delete(resolve(res), name, namespace, self.namespace,
                                      grace_period_seconds=grace_period_seconds,
                                      propagation_policy=propagation_policy, **kw))

    def create_subresource(self, res: Resource, name: str, sub: str, body: dict[str, Any],
                           namespace: str | None = None) -> Any:
        return self.send(_rest.create_subresource(resolve(res), name, sub, body, namespace, self.namespace))

    def watch(self, res: Resource, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              timeout_seconds: int | None = None, allow_bookmarks: bool = True, *,
              accept: str = JSON) -> Iterator[WatchEvent]:
        return self.stream(_rest.watch(resolve(res), namespace, resource_version=resource_version,
                                       label_selector=label_selector, field_selector=field_selector,
                                       timeout_seconds=timeout_seconds, allow_bookmarks=allow_bookmarks,
                                       accept=accept))
