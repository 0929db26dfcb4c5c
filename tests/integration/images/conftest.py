"""Fixtures: a real Debian ``docker-registry`` on loopback (temp dir, free port, killed at teardown) and
images made by umoci and pushed by skopeo. Nothing here talks to any host but 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.registry import Registry, registry  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.integration


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
