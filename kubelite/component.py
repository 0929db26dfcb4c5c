"""The process boilerplate every component shares: flags, client, logging, signals, leader election."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable

from kubelite.client import Client
from kubelite.leaderelection import LeaderElectionConfig, LeaderElector

logger = logging.getLogger(__name__)


def add_connection_args(p: argparse.ArgumentParser) -> None:
    """--kubeconfig, --master and -v, as every kube component has them."""
    p.add_argument("--kubeconfig", default=None, help="kubeconfig to reach the apiserver")
    p.add_argument("--master", default=None, help="apiserver URL (overrides the kubeconfig)")
    p.add_argument("-v", "--v", dest="verbosity", type=int, default=0)


def add_leader_election_args(p: argparse.ArgumentParser, resource_name: str) -> None:
    """kube's --leader-elect-* flags with their defaults (15 s / 10 s / 2 s)."""
    p.add_argument("--leader-elect", default="true", choices=["true", "false"], help="use a Lease in kube-system")
    p.add_argument("--leader-elect-resource-name", default=resource_name)
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)


def client_from_args(args: argparse.Namespace, user_agent: str) -> Client:
    """A client for --master if given, else for --kubeconfig."""
    if args.master:
        return Client.from_url(args.master, user_agent=user_agent)
    return Client.from_kubeconfig(args.kubeconfig, user_agent=user_agent)


def setup_logging(verbosity: int) -> None:
    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def lead_or_exit(client: Client, args: argparse.Namespace, lead: Callable[[], Awaitable[None]],
                       log: logging.Logger) -> int:
    """Run ``lead`` while holding the Lease (or at once with --leader-elect=false); 1 once leadership is lost."""
    if args.leader_elect != "true":
        await lead()
        return 0
    elector = LeaderElector(client, LeaderElectionConfig(
        args.leader_elect_resource_name, f"{socket.gethostname()}_{os.getpid()}",
        lease_duration=args.leader_elect_lease_duration, renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period))
    await elector.run(lead)
    log.error("leader election lost")
    return 1          # exit so a supervisor restarts us as a fresh candidate, as kube's do


async def until_signalled(main: Callable[[], Awaitable[int | None]], log: logging.Logger,
                          extra: dict[signal.Signals, Callable[[], object]] | None = None) -> int:
    """Await ``main()``; SIGTERM/SIGINT cancel it (exit code 0, "stopped"); ``extra`` adds other handlers."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig, handler in (extra or {}).items():
        loop.add_signal_handler(sig, handler)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
    try:
        return await main() or 0
    except asyncio.CancelledError:
        log.info("stopped")
        return 0


def run_process(run: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace,
                log: logging.Logger) -> int:
    """A component's ``main``: logging set up from ``-v``, then ``run(args)`` until SIGTERM/SIGINT."""
    setup_logging(args.verbosity)
    return asyncio.run(until_signalled(lambda: run(args), log))
