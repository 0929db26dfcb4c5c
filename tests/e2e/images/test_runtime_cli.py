"""Images run through ``kubelite runtime run POD.yaml`` (the node's runtime CLI reading the image store)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubelet.runtime.images.archive import import_archive
from kubelet.runtime.images.base import ensure_base_images
from kubelet.runtime.images.build import build
from kubelet.runtime.images.runner import OciRunStep
from kubelet.runtime.images.store import ImageStore
from tests.e2e.runtime.conftest import Env

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[3]


def _runtime(env: Env, store: ImageStore, *args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "kubelite", "runtime", "--root", str(env.root / "state"),
                        "--cgroup-root", env.cg_root, "--log-root", str(env.root / "logs"), "--pod-cidr", "none",
                        *args], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO), "KUBELITE_IMAGE_ROOT": str(store.root)})
    assert p.returncode == 0, f"kubelite runtime {' '.join(args)}: {p.stderr}"
    return p.stdout


def run_pod(env: Env, store: ImageStore, name: str, image: str, script: str) -> list[str]:
    manifest = env.root / f"{name}.yaml"
    manifest.write_text(f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: {image}
    command: ["sh", "-c", {script!r}]
""".replace("'", '"'))
    _runtime(env, store, "run", str(manifest))
    deadline = time.monotonic() + 30
    while True:
        rows = [r.split() for r in _runtime(env, store, "ps", "-a").splitlines()[1:]]
        mine = [r for r in rows if len(r) > 5 and r[5] == name]
        if mine and mine[0][2] == "EXITED":
            break
        assert time.monotonic() < deadline, f"pod {name} did not finish: {rows}"
        time.sleep(0.05)
    out = _runtime(env, store, "logs", mine[0][0]).splitlines()
    _runtime(env, store, "rm", "-f", name)
    return out


def test_runtime_cli_runs_base_imported_and_built_images(env: Env, umoci_layout: Path) -> None:
    store = ImageStore(env.root / "images")
    ensure_base_images(store)
    assert run_pod(env, store, "base", "busybox:1.35", "echo base; id -u") == ["base", "0"]

    archive = env.root / "docker.tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{umoci_layout}:1.0",
                    f"docker-archive:{archive}:mini/x:1.0"], check=True)
    import_archive(store, archive)
    assert run_pod(env, store, "imported", "mini/x:1.0", "cat /etc/two; ls /etc/one || true") == ["two"]

    ctx = env.root / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:1.35\nRUN echo built > /built && rm /bin/vi\n")
    build(store, ctx, ["built:1"], runner=OciRunStep(state_root=env.root / "build-oci"))
    assert run_pod(env, store, "built", "built:1", "cat /built; test -e /bin/vi || echo vi-gone") == ["built", "vi-gone"]
