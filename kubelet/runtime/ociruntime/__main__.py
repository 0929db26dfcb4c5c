"""The OCI runtime CLI: ``python -m kubelet.runtime.ociruntime [--root R] create|start|state|kill|delete|run ...``.

Follows runc's command line for the verbs conformance tools use; errors are one line on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from kubelet.runtime.ociruntime import ops, state

DEFAULT_ROOT = "/run/kubelite/ociruntime"


def _signal(name: str) -> int:
    if name.isdigit():
        return int(name)
    name = name.upper()
    return int(getattr(signal, name if name.startswith("SIG") else f"SIG{name}"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kubelite-oci")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--log", default="")
    p.add_argument("--log-format", default="text")
    sub = p.add_subparsers(dest="cmd", required=True)
    for verb in ("create", "run"):
        c = sub.add_parser(verb)
        c.add_argument("id")
        c.add_argument("--bundle", "-b", default=".")
        c.add_argument("--pid-file", default="")
        c.add_argument("--console-socket", default="")
        c.add_argument("--log-path", default="", help="CRI-format log of the container's stdout/stderr")
    for verb in ("start", "state"):
        sub.add_parser(verb).add_argument("id")
    k = sub.add_parser("kill")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="TERM")
    k.add_argument("--all", "-a", action="store_true")
    d = sub.add_parser("delete")
    d.add_argument("id")
    d.add_argument("--force", "-f", action="store_true")
    sub.add_parser("list")
    a = p.parse_args(argv)
    try:
        if a.cmd in ("create", "run"):
            pid = ops.create(a.root, a.id, a.bundle, a.log_path)
            if a.pid_file:
                with open(a.pid_file, "w") as f:
                    f.write(str(pid))
            if a.cmd == "run":
                try:
                    ops.start(a.root, a.id)
                    ex = ops.wait(a.root, a.id)
                finally:
                    ops.delete(a.root, a.id, force=True)
                return int(ex["exit_code"])
        elif a.cmd == "start":
            ops.start(a.root, a.id)
        elif a.cmd == "state":
            st = state.status(a.root, a.id)
            if st is None:
                raise ops.OciError(f"container {a.id} does not exist")
            print(json.dumps({k: v for k, v in st.items() if not k.startswith("_")}, indent=2))
        elif a.cmd == "kill":
            ops.kill(a.root, a.id, _signal(a.signal))
        elif a.cmd == "delete":
            ops.delete(a.root, a.id, a.force)
        elif a.cmd == "list":
            for cid in state.list_ids(a.root):
                st = state.status(a.root, cid)
                if st:
                    print(f"{cid}\t{st['status']}\t{st['pid']}\t{st['bundle']}")
    except (ops.OciError, OSError, ValueError) as e:
        print(f"kubelite-oci: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
