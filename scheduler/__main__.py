"""``python -m scheduler``: kubelite's kube-scheduler — informers, leader election, the loop, HTTP."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys

from kubelite import GIT_VERSION
from kubelite.api.resources import NODES, PODS
from kubelite.component import (add_connection_args, add_leader_election_args, client_from_args, lead_or_exit,
                                 setup_logging, until_signalled)
from kubelite.events import EventRecorder
from kubelite.informer import SharedInformerFactory
from scheduler.framework.runtime import Framework
from scheduler.metrics import SchedulerMetrics
from scheduler.plugins import SCORE_WEIGHTS, default_plugins
from scheduler.plugins.defaultbinder import DefaultBinder
from scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler
from scheduler.server import serving
from kubelite.client.fastwriter import FastWriter

logger = logging.getLogger("scheduler")

USER_AGENT = f"kube-scheduler/{GIT_VERSION}"  # its prefix names the field manager of our writes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scheduler", description="kubelite scheduler (kube-scheduler's framework)")
    add_connection_args(p)
    p.add_argument("--bind-address", default="127.0.0.1", help="address of /healthz and /metrics")
    p.add_argument("--secure-port", "--port", dest="port", type=int, default=10259,
                   help="port of /healthz and /metrics (default 10259; 0 = any free port, -1 = off)")
    p.add_argument("--scheduler-name", action="append", default=None,
                   help=f"profile (schedulerName) to serve; repeatable (default {DEFAULT_SCHEDULER_NAME})")
    p.add_argument("--percentage-of-nodes-to-score", type=int, default=0,
                   help="0 = adaptive, as kube-scheduler (50 - nodes/125, at least 5%%)")
    p.add_argument("--parallel-bindings", type=int, default=64, help="bindings in flight at once")
    add_leader_election_args(p, "kube-scheduler")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    client = client_from_args(args, USER_AGENT)
    metrics = SchedulerMetrics()
    names = args.scheduler_name or [DEFAULT_SCHEDULER_NAME]

    async def lead() -> None:
        metrics.leader.labels(args.leader_elect_resource_name).set(1)
        factory = SharedInformerFactory(client)
        pods = factory.informer(PODS)
        nodes = factory.informer(NODES)
        writer = FastWriter(client)       # bindings and Events: the two POSTs of every scheduled pod
        # client-go writes each event on its own goroutine, so a burst of Scheduled events is not dropped
        recorder = EventRecorder(writer, names[0], parallel=32, queue_size=20000)
        profiles = {n: Framework(n, default_plugins(), SCORE_WEIGHTS, args.percentage_of_nodes_to_score)
                    for n in names}
        sched = Scheduler(client, profiles, DefaultBinder(writer), recorder, metrics,
                          parallel_bindings=args.parallel_bindings)
        pods.add_handler(sched.on_pod_add, sched.on_pod_update, sched.on_pod_delete)
        nodes.add_handler(sched.on_node_add, sched.on_node_update, sched.on_node_delete)
        async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
            stack.push_async_callback(writer.close)
            tg.create_task(factory.run())
            tg.create_task(recorder.run())
            await factory.wait_for_cache_sync()
            gc.freeze()    # the synced caches live on: keep them out of every later collection
            logger.info("caches synced: %d nodes, %d pods; scheduling for %s", len(nodes.store), len(pods.store),
                        ", ".join(names))
            await sched.run()

    try:
        async with serving([metrics.registry], args.bind_address, args.port) as port:
            if port:
                logger.info("serving /healthz and /metrics on %s:%d", args.bind_address, port)
            return await lead_or_exit(client, args, lead, logger)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbosity)
    # Informer lists and watch events allocate many dicts that live as long as the cache: with the
    # default thresholds young collections run every few hundred of them and rescan the survivors.
    gc.set_threshold(50_000, 20, 100)
    return asyncio.run(until_signalled(lambda: run(args), logger))


if __name__ == "__main__":
    sys.exit(main())
