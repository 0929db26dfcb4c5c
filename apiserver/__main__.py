"""``python -m apiserver``: run the kubelite API server until SIGTERM/SIGINT (graceful shutdown)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from aiohttp import web

from apiserver.app import make_app
from apiserver.handlers.common import Settings
from apiserver.http1 import LeanServer
from kubelite.api import schema

logger = logging.getLogger("apiserver")


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(prog="apiserver", description="kubelite API server (Kubernetes REST over etcd)")
    p.add_argument("--etcd-servers", default="http://127.0.0.1:2379",
                   help="comma-separated etcd client URLs (default http://127.0.0.1:2379)")
    p.add_argument("--etcd-prefix", default="/registry", help="key prefix of every object (default /registry)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", "--secure-port", dest="port", type=int, default=6443, help="port (default 6443; 0 = any)")
    p.add_argument("--watch-bookmark-interval", type=float, default=60.0, help="seconds between watch BOOKMARKs")
    p.add_argument("--compaction-interval", type=float, default=300.0, help="seconds between etcd compactions")
    p.add_argument("--watch-cache-window", type=int, default=20000, help="events kept per resource for watch replay")
    p.add_argument("--workers", type=int, default=1,
                   help="apiserver processes sharing the port (SO_REUSEPORT; needs a fixed --port)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--lean-http", action=argparse.BooleanOptionalAction, default=True,
                   help="serve the REST verbs on the lean HTTP/1.1 protocol (apiserver.http1; default on)")
    p.add_argument("-v", "--v", dest="verbosity", type=int, default=0, help="log verbosity (0 info, 4+ debug)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not a.etcd_prefix.startswith("/"):
        p.error("--etcd-prefix must start with /")
    if a.workers < 1 or (a.workers > 1 and a.port == 0):
        p.error("--workers must be >= 1, and more than one worker needs a fixed --port")
    return Settings(etcd_servers=[s.strip() for s in a.etcd_servers.split(",") if s.strip()],
                    etcd_prefix=a.etcd_prefix.rstrip("/") or "/registry", bind_address=a.bind_address, port=a.port,
                    bookmark_interval=a.watch_bookmark_interval, compaction_interval=a.compaction_interval,
                    watch_window=a.watch_cache_window, workers=a.workers, reuse_port=a.reuse_port,
                    lean_http=a.lean_http)


def _settle_heap() -> None:
    """Once started (watch caches listed), before serving: load the schemas the first writes would
    load, collect start-up garbage, and move what is left out of the collector's reach. Serving then
    leaves few new long-lived tracked objects behind (the watch cache holds bytes), so young
    collections stay rare and short instead of walking the start-up heap during the first writes."""
    schema.definitions()
    gc.collect()
    gc.freeze()


async def serve(settings: Settings) -> None:
    """Serve until a stop signal: stop accepting, finish requests (watches end), then release storage."""
    app = make_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    _settle_heap()
    loop = asyncio.get_running_loop()
    lean: LeanServer | None = None
    if settings.lean_http:
        assert runner.server is not None
        lean = LeanServer(app, runner.server)
        server = await loop.create_server(lean, settings.bind_address, settings.port, reuse_address=True,
                                          reuse_port=settings.reuse_port or None, backlog=128)
        logger.info("serving on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
    else:
        site = web.TCPSite(runner, settings.bind_address, settings.port, reuse_address=True,
                           reuse_port=settings.reuse_port or None)
        await site.start()
        logger.info("serving on %s", ", ".join(str(a) for a in runner.addresses))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        logger.info("stopping")
    finally:
        if lean is not None:
            server.close()
            await lean.shutdown(settings.shutdown_timeout)
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    settings = parse_args(argv)
    if settings.workers > 1:
        from apiserver.workers import supervise
        return supervise(_without_workers(argv), settings.workers)
    # Lists and watch caches allocate thousands of dicts at once; the default GC thresholds make
    # young-generation collections run every few hundred of them (about half of a 10k-pod list).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        try:
            import uvloop
        except ImportError:  # optional speed-up: plain asyncio works the same
            asyncio.run(serve(settings))
        else:
            uvloop.run(serve(settings))
    except KeyboardInterrupt:
        pass
    return 0


def _without_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers=") and arg != "--reuse-port":
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
