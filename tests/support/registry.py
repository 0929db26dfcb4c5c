"""A real Debian ``docker-registry`` on loopback for tests (temp dir, free port, killed at teardown).

Nothing here talks to any host but 127.0.0.1. Use the ``registry`` fixture by importing it into a
conftest (``from tests.support.registry import registry``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from kubelet.runtime.images.registry import RegistryConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str          # 127.0.0.1:<port>
    dir: Path

    def skopeo(self, *args: str) -> None:
        subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True,
                       env={**os.environ, "REGISTRY_AUTH_FILE": str(self.dir / "auth.json")})

    @property
    def config(self) -> RegistryConfig:
        return RegistryConfig(offline=True)   # tests never leave loopback


@contextlib.contextmanager
def serve_registry(d: Path) -> Iterator[Registry]:
    """A docker-registry on a free loopback port with its storage, config and log in ``d``; stopped on exit."""
    d.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (d / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {d}/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    log = open(d / "registry.log", "wb")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("docker-registry did not come up: " + (d / "registry.log").read_text())
                time.sleep(0.02)
        yield Registry(f"127.0.0.1:{port}", d)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with serve_registry(tmp_path_factory.mktemp("kubelite-registry")) as reg:
        yield reg
