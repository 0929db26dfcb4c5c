"""``python -m hollow --nodes N``: run N hollow nodes against an apiserver.

SIGUSR1 pauses lease renewal (the nodes look dead to the node lifecycle controller), SIGUSR2 resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kubelite import GIT_VERSION
from kubelite.client import Client
from hollow.nodes import HollowNodes

logger = logging.getLogger("hollow")


USER_AGENT = f"hollow-node/{GIT_VERSION}"  # its prefix names the field manager of our writes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hollow", description="kubelite hollow nodes (a fake kubelet, like kwok)")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--master", default=None)
    p.add_argument("--name-prefix", default="hollow-node-")
    p.add_argument("--cpu", default="4")
    p.add_argument("--memory", default="32Gi")
    p.add_argument("--max-pods", default="110")
    p.add_argument("--zones", type=int, default=0, help="spread nodes over N topology.kubernetes.io/zone values")
    p.add_argument("--lease-period", type=float, default=10.0)
    p.add_argument("--renew-leases", default="true", choices=["true", "false"])
    p.add_argument("-v", "--v", dest="verbosity", type=int, default=0)
    args = p.parse_args(argv)
    if args.nodes < 0:
        p.error("--nodes must be >= 0")
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        client = Client.from_url(args.master, user_agent=USER_AGENT) if args.master else \
        Client.from_kubeconfig(args.kubeconfig, user_agent=USER_AGENT)
        hollow = HollowNodes(client, args.nodes, args.name_prefix, args.cpu, args.memory, args.max_pods,
                             lease_period=args.lease_period, zones=args.zones)
        if args.renew_leases == "false":
            hollow.renew_leases.clear()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        loop.add_signal_handler(signal.SIGUSR1, hollow.renew_leases.clear)
        loop.add_signal_handler(signal.SIGUSR2, hollow.renew_leases.set)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        try:
            await hollow.run()
        except asyncio.CancelledError:
            logger.info("stopped")
        finally:
            await client.close()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
