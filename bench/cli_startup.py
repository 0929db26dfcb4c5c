"""CLI start-up: `kubelite get pods` wall time beside the real `kubectl get pods` on the same cluster.

Starts a throwaway `kubelite up` (etcd + apiserver on free loopback ports, temp data dir) unless
--kubeconfig names a running cluster, creates a few pods, then runs both CLIs N times interleaved
(kubelite, kubectl dispatcher, pinned kubectl 1.32) and prints medians, p90 and the ratio. kubectl
keeps its discovery cache warm between runs, as it would for a user. Also prints what `kubelite get`
imports (the heavy modules it must not load) and the largest imports from `python -X importtime`.

    /work/venv/bin/python bench/cli_startup.py [-n 30] [--kubeconfig PATH]
Goal: kubelite ≤ 1.5 × kubectl.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode(errors='replace')}")
    return elapsed


def start_cluster(tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    data = tmp / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp / "up.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kubelite", "up", "--data-dir", str(data), "--no-kubelet",
                             "--etcd-port", str(free_port()), "--etcd-peer-port", str(free_port()),
                             "--apiserver-port", str(free_port())], env=env, stdout=log, stderr=log,
                            start_new_session=True)
    log.close()
    cfg = data / "kubeconfig"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kubelite up exited: {(tmp / 'up.log').read_text()[-2000:]}")
        if cfg.exists() and subprocess.run([sys.executable, "-m", "kubelite", "get", "ns",
                                            "--kubeconfig", str(cfg)], env=env, capture_output=True).returncode == 0:
            return proc, cfg
        time.sleep(0.2)
    raise SystemExit("cluster did not come up in 60 s")


def imports_of(env: dict[str, str], cfg: str) -> tuple[list[str], list[tuple[int, str]]]:
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "kubelite", "get", "pods", "--kubeconfig", cfg],
                       env=env, capture_output=True, text=True)
    mods: list[tuple[int, str]] = []
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = line[len("import time:"):].split("|")
            if len(parts) == 3 and parts[1].strip().isdigit():
                mods.append((int(parts[1]), parts[2].rstrip()))
    names = {n.strip() for _, n in mods}
    heavy = [m for m in ("asyncio", "aiohttp", "ssl", "http.client", "yaml", "email") if m in names]
    top = sorted(((c, n.strip()) for c, n in mods if not n.startswith("  ")), reverse=True)[:8]
    return heavy, top


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=30, help="runs of each command (interleaved)")
    p.add_argument("--kubeconfig", default=None, help="measure against this cluster instead of a fresh one")
    p.add_argument("--pods", type=int, default=5, help="pods to create first (fresh cluster only)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kubelite-bench-"))
    proc = None
    try:
        if args.kubeconfig:
            cfg = Path(args.kubeconfig)
        else:
            proc, cfg = start_cluster(tmp)
            from kubelite.client import SyncClient
            with SyncClient.from_kubeconfig(str(cfg)) as c:
                for i in range(args.pods):
                    c.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bench-{i}"},
                                      "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]}})
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KUBECONFIG": str(cfg), "HOME": str(tmp),
               # as installed: with bytecode caches (kept out of the tree), whatever this shell says
               "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        kubelite_cmd = [sys.executable, "-m", "kubelite", "get", "pods"]
        console = shutil.which("kubelite")
        cmds: dict[str, list[str]] = {"kubelite get pods": kubelite_cmd}
        dispatcher = shutil.which("kubectl") or "/usr/bin/kubectl"
        cache = ["--cache-dir", str(tmp / "kcache")]
        cmds["kubectl get pods (dispatcher)"] = [dispatcher, *cache, "get", "pods"]
        pinned = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
        if pinned.exists():
            cmds["kubectl.1.32 get pods"] = [str(pinned), *cache, "get", "pods"]
        cmds["python -c pass (floor)"] = [sys.executable, "-c", "pass"]
        if console:
            cmds["kubelite console script"] = [console, "get", "pods"]
        for cmd in cmds.values():             # warm caches (page cache, kubectl discovery, .pyc)
            timed(cmd, env)
        samples: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.n):
            for name, cmd in cmds.items():
                samples[name].append(timed(cmd, env))
        print(f"CLI start-up, {args.n} interleaved runs each, same cluster ({cfg}):")
        print(f"  {'command':34} {'median':>9} {'p90':>9} {'min':>9}")
        for name, xs in samples.items():
            xs = sorted(xs)
            p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
            print(f"  {name:34} {statistics.median(xs) * 1000:7.1f}ms {p90 * 1000:7.1f}ms {xs[0] * 1000:7.1f}ms")
        ours = statistics.median(samples["kubelite get pods"])
        for peer in ("kubectl get pods (dispatcher)", "kubectl.1.32 get pods"):
            if peer in samples:
                theirs = statistics.median(samples[peer])
                print(f"  ratio kubelite / {peer.split(' get')[0]}{' (dispatcher)' if 'dispatcher' in peer else ''}: "
                      f"{ours / theirs:.2f}x  (goal <= 1.5x)")
        heavy, top = imports_of(env, str(cfg))
        print(f"  heavy modules imported by `kubelite get pods`: {', '.join(heavy) or 'none'}")
        print("  largest imports (cumulative): " + ", ".join(f"{n} {c / 1000:.1f}ms" for c, n in top))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
