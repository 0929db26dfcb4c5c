"""Entry point of the ``kubelite`` console script: parse the sub-command and dispatch to it."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: kubelite <command> [args]")
        return 0
    print(f"kubelite: unknown command {argv[0]!r}", file=sys.stderr)
    return 2
