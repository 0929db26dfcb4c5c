"""``kubelite apiserver|scheduler|controller-manager|kubelet ...``: run one component in the foreground.

The same as ``python -m <package> ...``: the component's own ``__main__`` runs with the given flags.
It is imported only now, so the other commands never load component code.
"""

from __future__ import annotations

import runpy
import sys


def _run(package: str, argv: list[str]) -> int:
    from kubelite.cli.supervisor import has_entry_point

    if not has_entry_point(package):
        print(f"kubelite: the {package} component is not built yet (no {package}/__main__.py)", file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = [f"kubelite {package}", *argv]
    try:
        runpy.run_module(package, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        return 130
    finally:
        sys.argv = saved
    return 0


def apiserver(argv: list[str]) -> int:
    return _run("apiserver", argv)


def scheduler(argv: list[str]) -> int:
    return _run("scheduler", argv)


def controller_manager(argv: list[str]) -> int:
    return _run("controllers", argv)


def kubelet(argv: list[str]) -> int:
    return _run("kubelet", argv)
