"""``kubelite runtime`` end to end: run a pod from YAML, list, logs, exec, inspect, stop, rm."""

from __future__ import annotations

import json

import pytest

from .conftest import Env

pytestmark = pytest.mark.e2e


def test_run_pod_from_yaml_then_ps_logs_exec_rm(env: Env) -> None:
    pod = env.root / "pod.yaml"
    pod.write_text(f"""
apiVersion: v1
kind: Pod
metadata: {{name: demo, labels: {{app: demo}}}}
spec:
  volumes: [{{name: scratch, emptyDir: {{}}}}]
  containers:
  - name: main
    image: {env.image}
    command: [sh, -c, 'echo hello; echo shared > /data/x; exec sleep 600']
    volumeMounts: [{{name: scratch, mountPath: /data}}]
    resources: {{limits: {{cpu: 500m, memory: 64Mi}}}}
  - name: side
    image: {env.image}
    command: [sh, -c, 'while [ ! -e /data/x ]; do sleep 0.02; done; cat /data/x; exit 3']
    volumeMounts: [{{name: scratch, mountPath: /data}}]
""")
    sid = env.cli("run", str(pod)).stdout.strip()
    pods = env.cli("pods").stdout
    assert "default/demo" in pods and "READY" in pods
    main = env.cli("ps", "-q").stdout.split()
    assert len(main) == 1
    assert env.cli("wait", "demo", check=False).returncode == 1  # a pod is not a container
    side = [line.split()[0] for line in env.cli("ps", "-a").stdout.splitlines() if " side " in line][0]
    assert env.cli("wait", side, check=False).returncode == 3
    assert env.cli("logs", side).stdout == "shared\n"
    assert env.cli("logs", main[0]).stdout == "hello\n"
    out = env.cli("exec", main[0], "--", "sh", "-c", "hostname; cat /sys/fs/cgroup/x 2>/dev/null; exit 5", check=False)
    assert (out.returncode, out.stdout) == (5, "demo\n")
    out = env.cli("exec", "-i", main[0], "--", "sh", "-c", "read a; read b; echo $b $a", input="one\ntwo\n")
    assert out.stdout == "two one\n"
    st = json.loads(env.cli("inspect", sid[:8]).stdout)
    assert st["labels"]["io.kubelite.owner"] == "kubelite-runtime-cli" and st["labels"]["app"] == "demo"
    bad = env.cli("run", str(env.root / "missing.yaml"), check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("kubelite runtime:") and "Traceback" not in bad.stderr
    pod.write_text("kind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c}]}\n")
    bad = env.cli("run", str(pod), check=False)
    assert bad.returncode == 1 and "spec.containers[0].image: Required value" in bad.stderr
    env.cli("rm", "demo")
    assert env.cli("pods", "-q").stdout == "" and env.cli("ps", "-a", "-q").stdout == ""
