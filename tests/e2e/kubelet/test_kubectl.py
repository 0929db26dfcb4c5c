"""The real kubectl, and kubelite's own CLI, through the apiserver's pods/log and pods/exec proxies to the
kubelet."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.kubelet.conftest import Env, container, pod_manifest, wait_for

KUBECTL = os.environ.get("KUBELITE_KUBECTL", shutil.which("kubectl") or "/usr/bin/kubectl")
pytestmark = [pytest.mark.e2e, pytest.mark.compat]
if not os.path.exists(KUBECTL):  # pragma: no cover - machines without kubectl (CI has it)
    pytest.skip("kubectl is not installed", allow_module_level=True)


REPO = Path(__file__).resolve().parents[3]
CLIS = {"kubectl": [KUBECTL], "kubelite": [sys.executable, "-m", "kubelite"]}
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def argv(cli: str, kenv: Env, *args: str) -> list[str]:
    """``<cli> <command> --kubeconfig K <args...>`` (both take flags after the command, before ``--``)."""
    return [*CLIS[cli], args[0], "--kubeconfig", kenv.kubeconfig, *args[1:]]


@pytest.mark.parametrize("cli", sorted(CLIS))
async def test_logs_previous_follow_and_exec(kenv: Env, cli: str) -> None:
    async def kubectl(kenv: Env, *args: str, stdin: bytes | None = None,
                      timeout: float = 30) -> subprocess.CompletedProcess:
        return await asyncio.to_thread(subprocess.run, argv(cli, kenv, *args), input=stdin, capture_output=True,
                                       timeout=timeout, env=ENV)

    node = kenv.node()
    await kenv.ready(node)
    script = "echo run-$(cat /tmp/n 2>/dev/null || echo 0); test -e /tmp/x && exec sleep 1000; touch /tmp/x; exit 3"
    c = container("c", script, volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}])
    pod = pod_manifest("chatty", node.name, c, volumes=[{"name": "tmp", "emptyDir": {}}])
    await kenv.client.create("pods", pod, "default")
    await kenv.wait_status("chatty", lambda s: s["containerStatuses"][0]["restartCount"] == 1 and
                           "running" in s["containerStatuses"][0]["state"], 30, "restarted once, running")
    async def logged() -> object:            # "running" is reported before the shell's echo has run
        r = await kubectl(kenv, "logs", "chatty")
        return r if r.returncode != 0 or r.stdout else None
    r = await wait_for(logged, 15, "chatty's second run to log")
    assert r.returncode == 0 and r.stdout == b"run-0\n", r.stderr
    r = await kubectl(kenv, "logs", "chatty", "--previous")
    assert r.returncode == 0 and r.stdout == b"run-0\n", r.stderr
    r = await kubectl(kenv, "logs", "chatty", "--timestamps")
    assert r.stdout.split(b" ", 1)[1] == b"run-0\n" and r.stdout[:4].isdigit()
    # follow: a line written after the stream opened arrives; the command keeps running until killed
    proc = await asyncio.create_subprocess_exec(*argv(cli, kenv, "logs", "-f", "chatty"), env=ENV,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 15) == b"run-0\n"   # type: ignore[union-attr]
        r = await kubectl(kenv, "exec", "chatty", "--", "sh", "-c", "echo late > /proc/1/fd/1")
        assert r.returncode == 0, r.stderr
        assert await asyncio.wait_for(proc.stdout.readline(), 15) == b"late\n"    # type: ignore[union-attr]
    finally:
        proc.kill()
        await proc.wait()
    r = await kubectl(kenv, "exec", "chatty", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr.splitlines()[0]) == (3, b"out\n", b"err"), r.stderr
    r = await kubectl(kenv, "exec", "-i", "chatty", "--", "cat", stdin=b"through stdin\n")
    assert r.returncode == 0 and r.stdout == b"through stdin\n", r.stderr
