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
from kubelite.component import add_connection_args, client_from_args, setup_logging, until_signalled
from hollow.nodes import HollowNodes

logger = logging.getLogger("hollow")

USER_AGENT = f"hollow-node/{GIT_VERSION}"  # its prefix names the field manager of our writes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hollow", description="kubelite hollow nodes (a fake kubelet, like kwok)")
    p.add_argument("--nodes", type=int, default=1)
    add_connection_args(p)
    p.add_argument("--name-prefix", default="hollow-node-")
    p.add_argument("--cpu", default="4")
    p.add_argument("--memory", default="32Gi")
    p.add_argument("--max-pods", default="110")
    p.add_argument("--zones", type=int, default=0, help="spread nodes over N topology.kubernetes.io/zone values")
    p.add_argument("--lease-period", type=float, default=10.0)
    p.add_argument("--renew-leases", default="true", choices=["true", "false"])
    args = p.parse_args(argv)
    if args.nodes < 0:
        p.error("--nodes must be >= 0")
    setup_logging(args.verbosity)

    async def run() -> int:
        client = client_from_args(args, USER_AGENT)
        hollow = HollowNodes(client, args.nodes, args.name_prefix, args.cpu, args.memory, args.max_pods,
                             lease_period=args.lease_period, zones=args.zones)
        if args.renew_leases == "false":
            hollow.renew_leases.clear()
        try:
            await until_signalled(hollow.run, logger,
                                  {signal.SIGUSR1: hollow.renew_leases.clear, signal.SIGUSR2: hollow.renew_leases.set})
        finally:
            await client.close()
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
