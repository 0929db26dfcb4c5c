"""Fixtures for the control-plane component tests: a real apiserver + etcd (``apiserver_url``), and
the scheduler, controller-manager and hollow nodes as real processes, killed (by pid) afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.cluster import REPO_ROOT, wait_for


class Processes:
    """Starts ``python -m <component>`` processes against one apiserver; logs kept for failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="kubelite-control-"))

    def start(self, name: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        log = self._dir / f"{name}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", module, "--master", self.url, *args], stdout=fh,
                                    stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT), start_new_session=True)
        self.procs[name] = proc
        self.logs[name] = log
        return proc

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log_tails(self) -> str:
        out = []
        for name, path in self.logs.items():
            try:
                out.append(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
            except OSError:
                pass
        return "\n".join(out)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        for path in self.logs.values():
            path.unlink(missing_ok=True)
        try:
            self._dir.rmdir()
        except OSError:
            pass


@pytest.fixture
def processes(apiserver_url: str, request: pytest.FixtureRequest) -> Iterator[Processes]:
    procs = Processes(apiserver_url)
    try:
        yield procs
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(procs.log_tails())
        procs.close()


@pytest.fixture
def control_plane(processes: Processes) -> Processes:
    """Scheduler + controller-manager (no leader election, fast node monitor) + 3 hollow nodes."""
    processes.start("scheduler", "scheduler", "--port", "-1", "--leader-elect", "false")
    processes.start("controller-manager", "controllers", "--port", "-1", "--leader-elect", "false",
                    "--node-monitor-period", "0.5", "--node-monitor-grace-period", "3",
                    "--node-startup-grace-period", "5")
    processes.start("hollow-a", "hollow", "--nodes", "2", "--name-prefix", "hollow-a-", "--lease-period", "1")
    processes.start("hollow-b", "hollow", "--nodes", "1", "--name-prefix", "hollow-b-", "--lease-period", "1")
    wait_for(lambda: _ready_nodes(processes.url) == 3, 60, "3 hollow nodes Ready")
    return processes


def _ready_nodes(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/v1/nodes", timeout=5) as r:
        nodes = json.loads(r.read())["items"]
    return sum(1 for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                       for c in (n.get("status") or {}).get("conditions") or ()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
