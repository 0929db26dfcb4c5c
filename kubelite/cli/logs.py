"""``kubelite logs`` and ``kubelite exec``: a container's log and a command run in it, through the apiserver.

Logs stream over plain HTTP (``pods/log``, chunked); exec speaks the WebSocket channel protocol
``v5.channel.k8s.io`` (``v4`` as fallback), as kubectl ≥ 1.30 does: each binary frame starts with its
channel (0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4 resize, 255 close in v5).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from kubelite.api.resources import PODS
from kubelite.cli import common
from kubelite.cli.common import CliError

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_SINCE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def main(argv: list[str]) -> int:
    return common.run(_logs, argv)


def exec_(argv: list[str]) -> int:
    return common.run(_exec, argv)


def _pod_name(text: str) -> str:
    kind, _, name = text.partition("/")
    if name and kind in ("pod", "pods", "po"):
        return name
    if name:
        raise CliError(f'cannot attach to {kind}: only pods are supported')
    return text


def _container(c: Any, ns: str, pod: str, wanted: str | None) -> str:
    """The container to use: ``-c``, else the default-container annotation, else the first (kubectl's rule)."""
    if wanted:
        return wanted
    obj = c.get(PODS, pod, ns)
    names = [x["name"] for x in (obj.get("spec") or {}).get("containers") or []]
    default = ((obj.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if default in names:
        return str(default)
    if len(names) > 1:
        print(f'Defaulted container "{names[0]}" out of: {", ".join(names)}', file=sys.stderr)
    if not names:
        raise CliError(f'pod {pod} has no containers')
    return names[0]


def _since_seconds(text: str) -> int:
    m = _SINCE.match(text)
    if not text or not m or not any(m.groups()):
        raise CliError(f'invalid argument "{text}" for "--since" flag: use a duration like 5s, 2m or 3h')
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def _logs(argv: list[str]) -> int:
    p = common.parser("logs", "Print the logs for a container in a pod.")
    p.add_argument("pod", help="POD or pod/POD")
    p.add_argument("container_arg", nargs="?", metavar="CONTAINER")
    p.add_argument("-c", "--container", default=None)
    p.add_argument("-f", "--follow", action="store_true", help="stream the log as it grows")
    p.add_argument("-p", "--previous", action="store_true", help="the previous instance of the container")
    p.add_argument("--tail", type=int, default=-1, help="lines of recent log to show (-1: all)")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("--since", default=None, help="only newer than a relative duration like 5s, 2m, 3h")
    p.add_argument("--limit-bytes", type=int, default=None)
    args = p.parse_args(argv)
    since = _since_seconds(args.since) if args.since else None
    from kubelite.client import _rest

    c = common.client(args)
    ns = args.namespace or c.namespace
    pod = _pod_name(args.pod)
    params: dict[str, Any] = {"container": _container(c, ns, pod, args.container or args.container_arg)}
    if args.follow:
        params["follow"] = "true"
    if args.previous:
        params["previous"] = "true"
    if args.tail >= 0:
        params["tailLines"] = args.tail
    if args.timestamps:
        params["timestamps"] = "true"
    if since is not None:
        params["sinceSeconds"] = since
    if args.limit_bytes is not None:
        params["limitBytes"] = args.limit_bytes
    out = sys.stdout.buffer
    for chunk in c.stream_bytes(_rest.raw("GET", PODS.path(ns, pod, "log"), params=params, accept="*/*")):
        out.write(chunk)
        out.flush()
    return 0


def _exec(argv: list[str]) -> int:
    p = common.parser("exec", "Execute a command in a container.")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    p.add_argument("-t", "--tty", action="store_true", help="stdin is a TTY")
    p.add_argument("-c", "--container", default=None)
    p.add_argument("pod", help="POD or pod/POD; then -- COMMAND [args...]")
    cut = argv.index("--") if "--" in argv else len(argv)
    argv, command = argv[:cut], argv[cut + 1:]
    args = p.parse_args(argv)
    if not command:
        raise CliError("you must specify at least one command for the container")
    tty = args.tty and args.stdin and sys.stdin.isatty()
    if args.tty and not tty:
        print("Unable to use a TTY - input is not a terminal or the right kind of file", file=sys.stderr)
    c = common.client(args)
    ns = args.namespace or c.namespace
    pod = _pod_name(args.pod)
    container = _container(c, ns, pod, args.container)
    import asyncio

    from kubelite.cli import exec_stream

    return asyncio.run(exec_stream.run(c.config, PODS.path(ns, pod, "exec"), container, command,
                                       stdin=args.stdin, tty=tty))
