"""Benchmark: kubelite's image import, pull+unpack and build beside skopeo and umoci, same content, one run.

A 3-layer image (static busybox; 300 x 64 KiB random files; 2000 small text files) is made with umoci,
pushed with skopeo to a Debian docker-registry on 127.0.0.1 (temp dir, killed at the end), then:

- pull+unpack: kubelite ``RegistryClient.pull`` (downloads in parallel, unpacks each layer as it lands)
  vs ``skopeo copy docker://… oci:…`` + ``umoci unpack`` (the peer);
- import: kubelite ``import_archive`` of the skopeo-made oci-archive vs ``skopeo copy oci-archive:… oci:…``
  + ``umoci unpack``;
- build: ``kubelite image build`` of a Dockerfile making the same three layers with COPY vs
  ``umoci`` new/unpack/repack x3 (the closest peer that assembles layers from directories).

Prints medians of N runs and the ratios (kubelite / peer; goal for pull+unpack: <= 1.0).
Usage: python bench/images.py [--runs 5]   (as root; needs docker-registry, skopeo, umoci, busybox-static)
"""

from __future__ import annotations

import argparse
import contextlib
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelet.runtime.images.archive import import_archive  # noqa: E402
from kubelet.runtime.images.build import build  # noqa: E402
from kubelet.runtime.images.registry import RegistryClient, RegistryConfig  # noqa: E402
from kubelet.runtime.images.store import ImageStore  # noqa: E402
from tests.support.registry import serve_registry  # noqa: E402


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def make_content(d: Path) -> list[Path]:
    rnd = random.Random(42)
    l1, l2, l3 = d / "l1", d / "l2", d / "l3"
    (l1 / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", l1 / "bin/busybox")
    for a in ("sh", "ls", "cat"):
        os.symlink("busybox", l1 / "bin" / a)
    (l2 / "data").mkdir(parents=True)
    for i in range(300):
        (l2 / "data" / f"blob{i:03}.bin").write_bytes(rnd.randbytes(64 * 1024))
    (l3 / "app").mkdir(parents=True)
    for i in range(2000):
        sub = l3 / "app" / f"m{i % 40:02}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"module {i}\n" + "lorem ipsum dolor sit amet " * rnd.randint(1, 40))
    return [l1, l2, l3]


def umoci_image(layers: list[Path], layout: Path, work: Path) -> None:
    sh("umoci", "init", "--layout", str(layout))
    sh("umoci", "new", "--image", f"{layout}:1")
    bundle = work / "bundle"
    sh("umoci", "unpack", "--image", f"{layout}:1", str(bundle))
    for layer in layers:
        shutil.copytree(layer, bundle / "rootfs", dirs_exist_ok=True, symlinks=True)
        sh("umoci", "repack", "--refresh-bundle", "--image", f"{layout}:1", str(bundle))
    sh("umoci", "config", "--image", f"{layout}:1", "--config.cmd", "/bin/sh", "--os", "linux",
       "--architecture", "amd64")
    shutil.rmtree(bundle)


def timed(fn: Callable[[], object], runs: int, setup: Callable[[], None] | None = None) -> float:
    out = []
    for _ in range(runs):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    d = Path(tempfile.mkdtemp(prefix="kubelite-bench-images-"))
    reg = contextlib.ExitStack()
    try:
        port = reg.enter_context(serve_registry(d / "registry")).host.rsplit(":", 1)[1]
        layers = make_content(d / "content")
        layout = d / "oci"
        umoci_image(layers, layout, d)
        ref = f"127.0.0.1:{port}/bench/app:1"
        sh("skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{ref}")
        archive = d / "app.tar"
        sh("skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:1", f"oci-archive:{archive}:1")
        size = sum(f.stat().st_size for f in (layout / "blobs/sha256").iterdir())
        print(f"image: 3 layers, {size / 1e6:.1f} MB of blobs, {runs} runs each (median)")

        scratch = d / "scratch"

        def clean() -> None:
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()

        async def kl_pull() -> None:
            async with RegistryClient(RegistryConfig(offline=True)) as c:
                await c.pull(ImageStore(scratch / "store"), ref)

        pulled = d / "pulled"
        sh("skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{pulled}:1")
        # interleaved, so that disk write-back of one tool's run does not land on the other's only
        samples: dict[str, list[float]] = {k: [] for k in ("kl_pull", "skopeo", "umoci", "kl_import", "skopeo_arch")}
        for _ in range(runs):
            for key, fn in (
                    ("kl_pull", lambda: asyncio.run(kl_pull())),
                    ("skopeo", lambda: sh("skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                                          f"docker://{ref}", f"oci:{scratch}/oci:1")),
                    ("umoci", lambda: sh("umoci", "unpack", "--image", f"{pulled}:1", f"{scratch}/bundle")),
                    ("kl_import", lambda: import_archive(ImageStore(scratch / "store"), archive)),
                    ("skopeo_arch", lambda: sh("skopeo", "--insecure-policy", "copy", "-q",
                                               f"oci-archive:{archive}:1", f"oci:{scratch}/oci:1"))):
                samples[key].append(timed(fn, 1, clean))
        med = {k: statistics.median(v) for k, v in samples.items()}
        t_kl_pull, t_skopeo, t_umoci = med["kl_pull"], med["skopeo"], med["umoci"]
        t_kl_import, t_skopeo_arch = med["kl_import"], med["skopeo_arch"]

        ctx = d / "ctx"
        ctx.mkdir()
        for i, layer in enumerate(layers):
            shutil.copytree(layer, ctx / f"l{i}", symlinks=True)
        (ctx / "Dockerfile").write_text("FROM scratch\nCOPY l0/ /\nCOPY l1/ /\nCOPY l2/ /\nCMD [\"/bin/sh\"]\n")
        t_kl_build = timed(lambda: build(ImageStore(scratch / "store"), ctx, ["bench:1"], log=lambda _: None),
                           runs, clean)

        def umoci_build() -> None:
            umoci_image(layers, scratch / "oci", scratch)
        t_umoci_build = timed(umoci_build, runs, clean)

        rows = [
            ("pull+unpack", t_kl_pull, t_skopeo + t_umoci, "skopeo copy + umoci unpack"),
            ("  pull only (peer)", None, t_skopeo, "skopeo copy docker:// -> oci:"),
            ("  unpack only (peer)", None, t_umoci, "umoci unpack"),
            ("import oci-archive", t_kl_import, t_skopeo_arch + t_umoci, "skopeo copy oci-archive: + umoci unpack"),
            ("build 3 layers", t_kl_build, t_umoci_build, "umoci new + 3x (unpack dir, repack)"),
        ]
        print(f"{'operation':22} {'kubelite':>10} {'peer':>10} {'ratio':>7}  peer")
        for name, kl, peer, what in rows:
            k = f"{kl:9.3f}s" if kl is not None else " " * 10
            r = f"{kl / peer:6.2f}x" if kl is not None else " " * 7
            print(f"{name:22} {k} {peer:9.3f}s {r}  {what}")
        goal = t_kl_pull / (t_skopeo + t_umoci)
        print(f"goal pull+unpack <= 1.0x skopeo+umoci: {'met' if goal <= 1.0 else 'NOT met'} ({goal:.2f}x)")
        return 0
    finally:
        reg.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
