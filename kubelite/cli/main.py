"""Entry point of the ``kubelite`` console script: find the sub-command and hand it the arguments.

Each sub-command lives in its own module with a ``main(argv: list[str]) -> int``; modules are imported
only when their command runs, so ``kubelite get pods`` starts fast.
"""

from __future__ import annotations

import importlib
import signal
import sys

# command -> "module:function" (function(argv) -> exit code)
COMMANDS: dict[str, str] = {
    # cluster
    "up": "kubelite.cli.up:main",
    "down": "kubelite.cli.up:down",
    # components, each also `python -m <component>`
    "apiserver": "kubelite.cli.components:apiserver",
    "scheduler": "kubelite.cli.components:scheduler",
    "controller-manager": "kubelite.cli.components:controller_manager",
    "kubelet": "kubelite.cli.components:kubelet",
    # kubectl-like
    "apply": "kubelite.cli.apply:main",
    "create": "kubelite.cli.apply:create",
    "replace": "kubelite.cli.apply:replace",
    "get": "kubelite.cli.get:main",
    "describe": "kubelite.cli.describe:main",
    "delete": "kubelite.cli.delete:main",
    "label": "kubelite.cli.edit:label",
    "annotate": "kubelite.cli.edit:annotate",
    "patch": "kubelite.cli.edit:patch",
    "version": "kubelite.cli.version:main",
    "completion": "kubelite.cli.completion:main",
    "logs": "kubelite.cli.logs:main",
    "exec": "kubelite.cli.logs:exec_",
    "port-forward": "kubelite.cli.portforward:main",
    "scale": "kubelite.cli.workloads:scale",
    "rollout": "kubelite.cli.workloads:rollout",
    "set": "kubelite.cli.workloads:set_",
    "cordon": "kubelite.cli.nodes:cordon",
    "uncordon": "kubelite.cli.nodes:uncordon",
    "drain": "kubelite.cli.nodes:drain",
    "taint": "kubelite.cli.nodes:taint",
    # under the hood / observability
    "inspect": "kubelite.cli.inspect:main",
    "top": "kubelite.cli.top:main",
    "events": "kubelite.cli.events:main",
    "prometheus": "kubelite.cli.prometheus:main",
    # node-local
    "runtime": "kubelite.cli.runtime:main",
    "image": "kubelite.cli.image:main",
}


def _usage() -> str:
    return "usage: kubelite <command> [args]\n\ncommands:\n  " + "\n  ".join(sorted(COMMANDS))


def unknown_command_text(word: str) -> str:
    """kubectl's wording for a mistyped command, with its did-you-mean (difflib, imported only here)."""
    import difflib

    text = f'error: unknown command "{word}" for "kubelite"'
    close = difflib.get_close_matches(word, sorted(COMMANDS), n=3, cutoff=0.6)
    if close:
        text += "\n\nDid you mean this?\n" + "".join(f"\t{c}\n" for c in close)
    return text + "\nRun 'kubelite --help' for usage."


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    target = COMMANDS.get(argv[0])
    if target is None:
        from kubelite.cli.common import error_prefix

        print(unknown_command_text(argv[0]).replace("error:", error_prefix(), 1), file=sys.stderr)
        return 1
    module_name, func_name = target.split(":")
    # Ctrl-C stops a command even when the parent started it with SIGINT ignored (a shell's `cmd &`):
    # Python then keeps SIG_IGN and asyncio.run never cancels on it; kubectl's signal.Notify does the same
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            print(f"kubelite: command {argv[0]!r} is not built yet", file=sys.stderr)
            return 2
        raise
    return int(getattr(module, func_name)(argv[1:]) or 0)
