"""Real processes for tests: an etcd server and kubelite apiservers on free loopback ports.

Everything started here is killed (by pid) and its data removed at teardown, also on failure.
Use the pytest fixtures in ``tests/conftest.py`` (``etcd_server``, ``apiserver_url``) or the
context managers below directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
ETCD_BIN = os.environ.get("KUBELITE_ETCD", shutil.which("etcd") or "/usr/bin/etcd")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``condition()`` until it returns a truthy value; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - keep polling, report the last failure
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EtcdServer:
    """A running etcd; ``url`` is its client URL."""

    client_port: int
    peer_port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 20.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "etcd already running"
        self.log_path = self.data_dir.with_suffix(".log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", "default", "--data-dir", str(self.data_dir),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://127.0.0.1:{self.peer_port}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_port}",
             "--initial-cluster", f"default=http://127.0.0.1:{self.peer_port}",
             "--unsafe-no-fsync", "--logger", "zap", "--log-level", "warn"],
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_for(self._healthy, timeout, f"etcd on {self.url}")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"etcd exited with {self.proc.returncode}: {self.log_tail()}")
        with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
            return b"true" in r.read()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace") if self.log_path else ""
        except OSError:
            return ""


@contextlib.contextmanager
def etcd_server() -> Iterator[EtcdServer]:
    """Start a throwaway etcd (data under /dev/shm when present); kill and remove it afterwards."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    parent = Path(tempfile.mkdtemp(prefix="kubelite-etcd-", dir=base))
    server = EtcdServer(free_port(), free_port(), parent / "data")
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(parent, ignore_errors=True)


@dataclass
class ApiServer:
    """A running ``python -m apiserver``; ``url`` is its base URL."""

    etcd_url: str
    prefix: str
    port: int
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        fd, path = tempfile.mkstemp(prefix="kubelite-apiserver-", suffix=".log")
        self.log_path = Path(path)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "apiserver", "--etcd-servers", self.etcd_url, "--etcd-prefix", self.prefix,
             "--bind-address", "127.0.0.1", "--port", str(self.port), *self.extra_args],
            stdout=fd, stderr=fd, env=env, cwd=str(REPO_ROOT), start_new_session=True)
        os.close(fd)
        wait_for(self._ready, timeout, f"apiserver on {self.url}")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"apiserver exited with {self.proc.returncode}: {self.log_tail()}")
        with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as r:
            return r.status == 200

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def apiserver(etcd_url: str, prefix: str | None = None, extra_args: list[str] | None = None) -> Iterator[ApiServer]:
    """Start an apiserver on its own etcd key prefix (a fresh one unless given); stop it afterwards."""
    server = ApiServer(etcd_url, prefix or f"/kubelite-test-{uuid.uuid4().hex[:10]}", free_port(), extra_args or [])
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()
