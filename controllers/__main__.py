"""``python -m controllers``: kubelite's kube-controller-manager (leader-elected, /healthz, /metrics)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import AsyncIterator

from aiohttp import web
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kubelite import GIT_VERSION
from kubelite.component import (add_connection_args, add_leader_election_args, client_from_args, lead_or_exit,
                                 run_process)
from controllers.manager import ALL_CONTROLLERS, ControllerManager, ManagerConfig

logger = logging.getLogger("controller-manager")

USER_AGENT = f"kube-controller-manager/{GIT_VERSION}"  # its prefix names the field manager of our writes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="controller-manager", description="kubelite controller-manager")
    add_connection_args(p)
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--secure-port", "--port", dest="port", type=int, default=10257,
                   help="port of /healthz and /metrics (default 10257; 0 = any, -1 = off)")
    p.add_argument("--controllers", default="*",
                   help=f"comma-separated list, '*' = all ({','.join(ALL_CONTROLLERS)}); '-name' disables one")
    p.add_argument("--concurrent-replicaset-syncs", type=int, default=5)
    p.add_argument("--concurrent-deployment-syncs", type=int, default=5)
    p.add_argument("--concurrent-gc-syncs", type=int, default=20)
    p.add_argument("--node-monitor-period", type=float, default=5.0)
    p.add_argument("--node-monitor-grace-period", type=float, default=50.0)
    p.add_argument("--node-startup-grace-period", type=float, default=60.0)
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--allocate-node-cidrs", default="true", choices=["true", "false"])
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500)
    add_leader_election_args(p, "kube-controller-manager")
    return p.parse_args(argv)


def enabled(spec: str) -> tuple[str, ...]:
    """kube's --controllers syntax: '*', 'a,b', '*,-podgc'."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s.lstrip("-") for s in items if s.lstrip("-") not in (*ALL_CONTROLLERS, "*")]
    if unknown:
        raise SystemExit(f"controller-manager: unknown controllers: {', '.join(unknown)}")
    out = list(ALL_CONTROLLERS) if "*" in items else [s for s in items if not s.startswith("-")]
    return tuple(c for c in out if f"-{c}" not in items)


@contextlib.asynccontextmanager
async def serving(host: str, port: int, leading: dict[str, bool]) -> AsyncIterator[None]:
    if port < 0:
        yield
        return

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def run(args: argparse.Namespace) -> int:
    client = client_from_args(args, USER_AGENT)
    config = ManagerConfig(
        controllers=enabled(args.controllers), concurrent_replicaset_syncs=args.concurrent_replicaset_syncs,
        concurrent_deployment_syncs=args.concurrent_deployment_syncs, concurrent_gc_syncs=args.concurrent_gc_syncs,
        node_monitor_period=args.node_monitor_period, node_monitor_grace_period=args.node_monitor_grace_period,
        node_startup_grace_period=args.node_startup_grace_period, cluster_cidr=args.cluster_cidr,
        node_cidr_mask_size=args.node_cidr_mask_size, allocate_node_cidrs=args.allocate_node_cidrs == "true",
        terminated_pod_gc_threshold=args.terminated_pod_gc_threshold)

    async def lead() -> None:
        manager = ControllerManager(client, config)
        logger.info("running controllers: %s", ", ".join(config.controllers))
        await manager.run()

    try:
        async with serving(args.bind_address, args.port, {}):
            return await lead_or_exit(client, args, lead, logger)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    return run_process(run, parse_args(argv), logger)


if __name__ == "__main__":
    sys.exit(main())
