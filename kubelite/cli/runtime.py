"""``kubelite runtime ...``: a crictl-like face on the node's runtime, without the control plane.

  run POD.yaml            sandbox + containers of a v1 Pod manifest, started (prints the pod id)
  pods | ps [-a]          list sandboxes | containers
  logs [-f] ID            a container's log (CRI format stripped)
  exec [-i] [-t] ID CMD.. run CMD in a running container
  stop ID | rm [-f] ID    a container or a pod (rm of a pod removes its containers)
  inspect ID | wait ID    status as JSON | block until a container exits (exit code = its own)
IDs are container or pod ids, any unique prefix, or a pod's ``name`` / ``namespace/name``. What this
command starts carries the label ``io.kubelite.owner=kubelite-runtime-cli``, so a kubelet leaves it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
import time
from typing import Any

import yaml

from kubelet import cri
from kubelet.runtime import network, podspec
from kubelet.runtime.service import Runtime

DEFAULT_ROOT = "/run/kubelite/runtime"
DEFAULT_POD_CIDR = "10.244.254.0/24"  # a node subnet no `kubelite up` node takes by default


class CliError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelite runtime", description="Run pods and containers on this node.")
    p.add_argument("--root", default=DEFAULT_ROOT, help="runtime state dir")
    p.add_argument("--cgroup-root", default=None, help="cgroup root (default kubelite/<node-name>)")
    p.add_argument("--node-name", default=os.uname().nodename)
    p.add_argument("--log-root", default="/var/log/pods")
    p.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR, help="this node's pod subnet ('none': no pod network)")
    p.add_argument("--cluster-cidr", default=network.DEFAULT_CLUSTER_CIDR)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run").add_argument("file")
    sub.add_parser("pods").add_argument("-q", action="store_true")
    ps = sub.add_parser("ps")
    ps.add_argument("-a", action="store_true")
    ps.add_argument("-q", action="store_true")
    lg = sub.add_parser("logs")
    lg.add_argument("-f", action="store_true")
    lg.add_argument("id")
    ex = sub.add_parser("exec")
    ex.add_argument("-i", action="store_true")
    ex.add_argument("-t", action="store_true")
    ex.add_argument("id")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    for verb in ("stop", "inspect", "wait"):
        sub.add_parser(verb).add_argument("id")
    rm = sub.add_parser("rm")
    rm.add_argument("-f", action="store_true")
    rm.add_argument("id")
    return p


async def _resolve(rt: Runtime, ident: str) -> tuple[str, str]:
    """("container" | "pod", full id) for an id prefix or a pod name."""
    pods = await rt.list_pod_sandboxes()
    ctrs = await rt.list_containers()
    hits = [("container", c.id) for c in ctrs if c.id.startswith(ident)]
    hits += [("pod", s.id) for s in pods if s.id.startswith(ident)]
    if not hits:
        ns, _, name = ident.rpartition("/")
        hits = [("pod", s.id) for s in pods if s.metadata.name == name and (not ns or s.metadata.namespace == ns)]
    if not hits:
        raise CliError(f"no container or pod {ident!r}")
    if len(hits) > 1:
        raise CliError(f"{ident!r} is ambiguous: {', '.join(h[1][:12] for h in hits)}")
    return hits[0]


def _age(ns: int) -> str:
    s = max(0, int(time.time() - ns / 1e9))
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


async def _run(rt: Runtime, a: argparse.Namespace) -> int:
    try:
        with open(a.file) as f:
            pod = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise CliError(f"{a.file}: {e}") from None
    plan = podspec.plan(pod if isinstance(pod, dict) else {}, a.log_root, os.path.join(a.root, "volumes"))
    for d in plan.empty_dirs.values():
        os.makedirs(d, exist_ok=True)
    sid = await rt.run_pod_sandbox(plan.sandbox, plan.handler)
    try:
        for c in plan.containers:
            cid = await rt.create_container(sid, c, plan.sandbox)
            await rt.start_container(cid)
    except BaseException:
        await rt.remove_pod_sandbox(sid)  # all or nothing
        raise
    print(sid)
    return 0


async def _logs(rt: Runtime, a: argparse.Namespace) -> int:
    kind, cid = await _resolve(rt, a.id)
    if kind != "container":
        raise CliError("logs needs a container id")
    st = await rt.container_status(cid)
    pos = 0
    while True:
        partial = b""
        try:
            with open(st.log_path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b""
        pos += len(data)
        for line in data.splitlines():
            parts = line.split(b" ", 3)
            if len(parts) == 4:
                out = sys.stdout.buffer if parts[1] == b"stdout" else sys.stderr.buffer
                partial += parts[3]
                if parts[2] == b"F":
                    out.write(partial + b"\n")
                    partial = b""
                out.flush()
        if not a.f or (await rt.container_status(cid)).state == cri.ContainerState.EXITED:
            return 0
        await asyncio.sleep(0.2)


async def _exec(rt: Runtime, a: argparse.Namespace) -> int:
    kind, cid = await _resolve(rt, a.id)
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if kind != "container" or not cmd:
        raise CliError("usage: kubelite runtime exec [-i] [-t] CONTAINER -- COMMAND...")
    p = await rt.exec(cid, cmd, tty=a.t, stdin=a.i)
    loop = asyncio.get_running_loop()

    async def pump(reader: asyncio.StreamReader, out: Any) -> None:
        while chunk := await reader.read(65536):
            out.write(chunk)
            out.flush()

    async def feed() -> None:
        assert p.stdin is not None
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(0), "rb", 0))
        while data := await reader.read(65536):
            p.stdin.write(data)
            await p.stdin.drain()
        p.stdin.close()

    saved = None
    if a.t and a.i and os.isatty(0):  # a terminal of our own: raw, sized like ours
        import termios
        import tty
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        size = os.get_terminal_size(0)
        p.resize(size.columns, size.lines)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(pump(p.stdout, sys.stdout.buffer))
            if p.stderr is not None:
                tg.create_task(pump(p.stderr, sys.stderr.buffer))
            if p.stdin is not None:
                feeder = tg.create_task(feed())
            code = await p.wait()
            if p.stdin is not None:
                feeder.cancel()
                p.stdin.close()
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    return code


async def _main(a: argparse.Namespace) -> int:
    net = None
    if a.pod_cidr != "none":
        try:
            net = network.NodeNetwork(a.pod_cidr, a.cluster_cidr, os.path.join(a.root, "ipam"))
        except ValueError as e:
            raise CliError(f"--pod-cidr: {e}") from None
    async with Runtime(a.root, node_name=a.node_name, cgroup_root=a.cgroup_root, image_store=_image_store(),
                       network=net) as rt:
        if a.cmd == "run":
            return await _run(rt, a)
        if a.cmd == "pods":
            rows = [(s.id[:13], s.metadata.namespace + "/" + s.metadata.name, s.state.value.removeprefix("SANDBOX_"),
                     s.ip or "-", _age(s.created_at), s.runtime_handler) for s in await rt.list_pod_sandboxes()]
            _table(["POD ID", "NAME", "STATE", "IP", "AGE", "HANDLER"], rows, a.q)
        elif a.cmd == "ps":
            pods = {s.id: s.metadata.name for s in await rt.list_pod_sandboxes()}
            rows = [(c.id[:13], c.metadata.name, c.state.value.removeprefix("CONTAINER_"),
                     str(c.exit_code) if c.state == cri.ContainerState.EXITED else "-", c.reason or "-",
                     pods.get(c.pod_sandbox_id, "?"), _age(c.created_at), c.image)
                    for c in await rt.list_containers() if a.a or c.state == cri.ContainerState.RUNNING]
            _table(["CONTAINER", "NAME", "STATE", "EXIT", "REASON", "POD", "AGE", "IMAGE"], rows, a.q)
        elif a.cmd == "logs":
            return await _logs(rt, a)
        elif a.cmd == "exec":
            return await _exec(rt, a)
        elif a.cmd in ("stop", "rm", "inspect", "wait"):
            kind, ident = await _resolve(rt, a.id)
            if a.cmd == "inspect":
                st = await (rt.container_status(ident) if kind == "container" else rt.pod_sandbox_status(ident))
                print(json.dumps(_jsonable(st), indent=2))
            elif a.cmd == "wait":
                while (st := await rt.container_status(ident)).state != cri.ContainerState.EXITED:
                    await asyncio.sleep(0.05)
                print(st.exit_code)
                return st.exit_code
            elif kind == "container":
                if a.cmd == "rm" and not a.f and (await rt.container_status(ident)).state == cri.ContainerState.RUNNING:
                    raise CliError("container is running: stop it first or use rm -f")
                await (rt.stop_container(ident, 10) if a.cmd == "stop" else rt.remove_container(ident))
            else:
                st = await rt.pod_sandbox_status(ident)
                if a.cmd == "stop":
                    await rt.stop_pod_sandbox(ident)
                else:
                    await rt.stop_pod_sandbox(ident)
                    await rt.remove_pod_sandbox(ident)
                    shutil.rmtree(os.path.join(a.root, "volumes", st.metadata.uid), ignore_errors=True)
            if a.cmd in ("stop", "rm"):
                print(ident)
    return 0


def _table(header: list[str], rows: list[tuple[str, ...]], quiet: bool) -> None:
    if quiet:
        for r in rows:
            print(r[0])
        return
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [tuple(header)] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def _image_store() -> Any:
    """The node's image store when the images part is installed (``rootfs:`` images work without it)."""
    try:
        from kubelet.runtime.images import ImageStore  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        return ImageStore()
    except Exception:  # a store that cannot open is the same as none for rootfs: images
        return None


def main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    if os.geteuid() != 0:
        print("kubelite runtime: must run as root", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_main(a))
    except (CliError, podspec.PodSpecError, cri.CriError) as e:
        print(f"kubelite runtime: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
