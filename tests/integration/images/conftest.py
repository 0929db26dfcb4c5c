"""Fixtures: a real Debian ``docker-registry`` on loopback (temp dir, free port, killed at teardown) and
images made by umoci and pushed by skopeo. Nothing here talks to any host but 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from kubelet.runtime.images.registry import RegistryConfig

pytestmark = pytest.mark.integration


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


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    d = tmp_path_factory.mktemp("kubelite-registry")
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


def _umoci(*args: str) -> None:
    subprocess.run(["umoci", *args], check=True, capture_output=True)


def make_umoci_image(d: Path, tag: str = "1.0") -> Path:
    """An OCI layout at ``d/oci`` with a 3-layer image ``tag``: busybox; etc/one; etc/two minus etc/one."""
    layout = d / "oci"
    _umoci("init", "--layout", str(layout))
    _umoci("new", "--image", f"{layout}:{tag}")
    bundle = d / "bundle"
    _umoci("unpack", "--image", f"{layout}:{tag}", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", rootfs / "bin/busybox")
    for applet in ("sh", "cat", "ls", "echo", "test", "true"):
        os.symlink("busybox", rootfs / "bin" / applet)
    _umoci("repack", "--refresh-bundle", "--image", f"{layout}:{tag}", str(bundle))
    (rootfs / "etc/one").write_text("one\n")
    _umoci("repack", "--refresh-bundle", "--image", f"{layout}:{tag}", str(bundle))
    (rootfs / "etc/one").unlink()
    (rootfs / "etc/two").write_text("two\n")
    _umoci("repack", "--refresh-bundle", "--image", f"{layout}:{tag}", str(bundle))
    _umoci("config", "--image", f"{layout}:{tag}", "--clear=config.entrypoint", "--config.cmd", "/bin/sh",
           "--config.env", "PATH=/bin", "--os", "linux", "--architecture", "amd64")
    shutil.rmtree(bundle)
    return layout


@pytest.fixture(scope="session")
def umoci_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_umoci_image(tmp_path_factory.mktemp("umoci"))
