"""The kubelet end to end: real apiserver + etcd, the kubelet as a process, real containers."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from tests.e2e.kubelet.conftest import Env, by_name, conditions, container, pod_manifest, wait_for

pytestmark = pytest.mark.e2e


async def test_two_container_pod_runs_with_full_status_and_exit_reasons(kenv: Env) -> None:
    node = kenv.node()
    n = await kenv.ready(node)
    assert n["metadata"]["labels"]["kubernetes.io/hostname"] == node.name
    assert n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
    assert n["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.4-kubelite"
    assert {c["type"] for c in n["status"]["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    # a server on localhost in one container, reached from the other: the pod shares its network
    pod = pod_manifest("two", node.name,
                       container("server", "echo hi > /tmp/index.html; httpd -f -p 8080 -h /tmp"),
                       container("client", "until wget -q -O /tmp/got http://127.0.0.1:8080/index.html; "
                                           "do sleep 0.1; done; cat /tmp/got; sleep 1000"))
    await kenv.client.create("pods", pod, "default")
    s = await kenv.wait_status("two", lambda s: conditions(s).get("Ready") == "True", 30, "Ready")
    assert s["phase"] == "Running" and s["qosClass"] == "BestEffort" and s["hostIP"] and s["startTime"]
    for name in ("server", "client"):
        cs = by_name(s["containerStatuses"], name)
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
        assert cs["containerID"].startswith("kubelite://") and cs["imageID"]
        assert "startedAt" in cs["state"]["running"]
    assert set(conditions(s)) == {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    await _check_metrics_and_stats(kenv, node)
    # exit codes and reasons, restartPolicy Never
    mem = {"limits": {"memory": "16Mi"}}
    for name, script, extra in (("ok", "exit 0", {}), ("bad", "exit 3", {}),
                                ("oom", "head -c 64m /dev/zero | tail > /dev/null", {"resources": mem})):
        await kenv.client.create("pods", pod_manifest(name, node.name, container("c", script, **extra),
                                                      restartPolicy="Never"), "default")
    expect = {"ok": (0, "Completed", "Succeeded"), "bad": (3, "Error", "Failed"), "oom": (137, "OOMKilled", "Failed")}
    for name, (code, reason, phase) in expect.items():
        s = await kenv.wait_status(name, lambda s, p=phase: s.get("phase") == p, 30, phase)
        term = s["containerStatuses"][0]["state"]["terminated"]
        assert (term["exitCode"], term["reason"]) == (code, reason), term
        assert term["finishedAt"]


async def test_crashloop_backoff_grows(kenv: Env) -> None:
    node = kenv.node()                                   # --crash-loop-base 1: delays 1, 2, 4 s
    await kenv.ready(node)
    await kenv.client.create("pods", pod_manifest("crash", node.name, container("c", "exit 1")), "default")
    seen: dict[int, float] = {}

    async def restarts(n: int) -> bool:
        cs = (await kenv.status("crash"))["containerStatuses"][0]
        seen.setdefault(cs["restartCount"], time.monotonic())
        return cs["restartCount"] >= n

    await wait_for(lambda: restarts(4), 40, "4 restarts")
    gaps = [seen[i + 1] - seen[i] for i in (1, 2, 3)]
    # each gap is the back-off (1, 2, 4 s) plus the run; the first restart had no back-off at all
    assert gaps[0] >= 0.8 and gaps[1] >= 1.6 and gaps[2] >= 3.2, gaps
    assert gaps[2] > gaps[0] + 1.5, gaps
    # the fifth run exits, then the pod waits out its 8 s back-off as CrashLoopBackOff (between a restart's
    # create and start it is ContainerCreating, and from its exit to the next sync Terminated, as in Kubernetes)
    s = await kenv.wait_status("crash", lambda s: (s["containerStatuses"][0]["state"].get("waiting") or {})
                               .get("reason") == "CrashLoopBackOff", 20, "CrashLoopBackOff")
    cs = s["containerStatuses"][0]
    assert "back-off 8s restarting failed container=c" in cs["state"]["waiting"]["message"], cs
    assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["lastState"]["terminated"]["reason"] == "Error"


async def test_probes_liveness_restarts_and_readiness_gates(kenv: Env) -> None:
    node = kenv.node()
    await kenv.ready(node)
    probe = {"periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 5}   # a loaded CI machine: no false timeouts
    c = container("c", "touch /tmp/alive; sleep 1000",
                  livenessProbe={"exec": {"command": ["test", "-e", "/tmp/alive"]}, **probe},
                  readinessProbe={"exec": {"command": ["test", "-e", "/tmp/ready"]}, **probe})
    await kenv.client.create("pods", pod_manifest("probed", node.name, c), "default")
    s = await kenv.wait_status("probed", lambda s: s.get("phase") == "Running", 30, "Running")
    assert conditions(s)["Ready"] == "False"
    await _exec(kenv, node, "probed", ["touch", "/tmp/ready"])
    await kenv.wait_status("probed", lambda s: conditions(s).get("Ready") == "True", 15, "Ready")
    await _exec(kenv, node, "probed", ["rm", "/tmp/alive"])
    s = await kenv.wait_status("probed", lambda s: s["containerStatuses"][0]["restartCount"] == 1, 20, "restart")
    assert s["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] in (137, 143)


async def _exec(kenv: Env, node, pod: str, cmd: list[str]) -> None:  # type: ignore[no-untyped-def]
    import aiohttp
    n = await kenv.client.get("nodes", node.name)
    port = n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    q = "&".join(f"command={c}" for c in cmd)
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"http://127.0.0.1:{port}/exec/default/{pod}/c?{q}&stdout=true&stderr=true",
                                protocols=("v5.channel.k8s.io",)) as ws:
            frames = [m.data async for m in ws if m.type == aiohttp.WSMsgType.BINARY]
    assert frames and frames[-1][0] == 3 and b"Success" in frames[-1], frames


async def test_graceful_delete_runs_prestop_and_honours_grace(kenv: Env) -> None:
    node = kenv.node()
    await kenv.ready(node)
    hook_log = node.root.parent / "prestop-proof"
    hook_log.mkdir()
    c = container("c", "trap 'echo term >> /proof/log; exit 0' TERM; while true; do sleep 0.1; done",
                  lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /proof/log"]}}},
                  volumeMounts=[{"name": "proof", "mountPath": "/proof"}])
    pod = pod_manifest("grace", node.name, c, volumes=[{"name": "proof", "hostPath": {"path": str(hook_log)}}])
    pod["spec"]["terminationGracePeriodSeconds"] = 5
    await kenv.client.create("pods", pod, "default")
    await kenv.wait_status("grace", lambda s: s.get("phase") == "Running", 30, "Running")
    t0 = time.monotonic()
    await kenv.client.delete("pods", "grace", "default")

    async def gone() -> bool:
        try:
            await kenv.pod("grace")
            return False
        except Exception:
            return True
    await wait_for(gone, 20, "pod object removed")
    assert time.monotonic() - t0 < 5, "SIGTERM was trapped: the pod must not wait for the whole grace period"
    assert (hook_log / "log").read_text().split() == ["prestop", "term"]


async def test_configmap_secret_env_volumes_and_downward_api(kenv: Env) -> None:
    node = kenv.node()
    await kenv.ready(node)
    script = ("echo \"$GREETING $PASSWORD $MY_NAME $MY_NODE $MEM\"; cat /cfg/greeting /sec/password /info/labels; "
              "echo; sleep 1000")
    c = container("c", script,
                  env=[{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                       {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                       {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                       {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                          "divisor": "1Mi"}}}],
                  envFrom=[{"secretRef": {"name": "sec"}}],
                  resources={"limits": {"memory": "32Mi"}},
                  volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"},
                                {"name": "info", "mountPath": "/info"}])
    pod = pod_manifest("cfgpod", node.name, c, volumes=[
        {"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "sec", "secret": {"secretName": "sec"}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}])
    pod["metadata"]["labels"] = {"app": "demo"}
    await kenv.client.create("pods", pod, "default")
    s = await kenv.wait_status("cfgpod", lambda s: (s.get("containerStatuses") or [{}])[0].get("state", {})
                               .get("waiting", {}).get("reason") == "CreateContainerConfigError", 20, "config error")
    assert "not found" in s["containerStatuses"][0]["state"]["waiting"]["message"]
    await kenv.client.create("configmaps", {"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}}, "default")
    await kenv.client.create("secrets", {"metadata": {"name": "sec"},
                                         "data": {"PASSWORD": base64.b64encode(b"s3cret").decode(),
                                                  "password": base64.b64encode(b"file-secret").decode()}}, "default")
    await kenv.wait_status("cfgpod", lambda s: s.get("phase") == "Running", 30, "Running")
    log = await _logs(kenv, node, "cfgpod", "", want='app="demo"')
    assert f"hello s3cret cfgpod {node.name} 32" in log
    assert "hellofile-secretapp=\"demo\"" in log.replace("\n", "")


async def _logs(kenv: Env, node, pod: str, query: str, want: str = "") -> str:  # type: ignore[no-untyped-def]
    """Container c's log through the kubelet, once it is not empty and holds ``want`` (a container keeps
    writing after it shows Running)."""
    import aiohttp
    n = await kenv.client.get("nodes", node.name)
    port = n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]

    async def fetch() -> str:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/containerLogs/default/{pod}/c?{query}") as r:
                text = await r.text() if r.status == 200 else ""
                return text if want in text else ""
    return await wait_for(fetch, 10, f"logs of {pod} holding {want!r}")


async def test_logs_previous_and_kill9_restart_readopts(kenv: Env) -> None:
    node = kenv.node()
    await kenv.ready(node)
    await kenv.client.create("pods", pod_manifest("steady", node.name, container("c", "echo steady; sleep 1000")),
                             "default")
    await kenv.client.create("pods", pod_manifest("exits", node.name, container(
        "c", "echo run-$(cat /proc/uptime | cut -d. -f1); test -e /tmp/x || sleep 3; exit 3")), "default")
    await kenv.wait_status("steady", lambda s: s.get("phase") == "Running", 30, "Running")
    s_exits = await kenv.wait_status("exits", lambda s: "running" in s["containerStatuses"][0]["state"], 30, "run")
    steady_id = (await kenv.status("steady"))["containerStatuses"][0]["containerID"]
    node.kill9()
    # while the kubelet is down, "exits" exits with 3
    await asyncio_sleep_until_exit(3.5)
    node.start()
    await kenv.ready(node)
    s = await kenv.wait_status("exits", lambda s: s["containerStatuses"][0]["restartCount"] >= 1, 30, "restarted")
    last = s["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    assert last["containerID"] == s_exits["containerStatuses"][0]["containerID"]
    steady = (await kenv.status("steady"))["containerStatuses"][0]
    assert steady["restartCount"] == 0 and steady["containerID"] == steady_id and "running" in steady["state"]
    prev = await _logs(kenv, node, "exits", "previous=true")
    assert prev.startswith("run-")
    tail = await _logs(kenv, node, "steady", "tailLines=1&timestamps=true")
    assert tail.rstrip().endswith(" steady")


async def asyncio_sleep_until_exit(seconds: float) -> None:
    """The container's own timer runs out while the kubelet is down (no condition to poll: it is dead)."""
    import asyncio
    await asyncio.sleep(seconds)


async def test_sigterm_keeps_pods_and_down_cleanup_removes_what_a_crash_left(kenv: Env) -> None:
    from kubelite.cli.kubelet_cleanup import cleanup
    from tests.support.leaks import mounts_under as _mounts_under, pod_cgroups as _pod_cgroups, procs_mentioning as _procs_mentioning
    node = kenv.node()
    await kenv.ready(node)
    await kenv.client.create("pods", pod_manifest("left", node.name, container("c", "sleep 1000")), "default")
    s = await kenv.wait_status("left", lambda s: s.get("phase") == "Running", 30, "Running")
    cid = s["containerStatuses"][0]["containerID"]
    assert node.stop(stop_pods=False) == 0                      # SIGTERM: the kubelet goes, the pod stays
    assert _procs_mentioning(str(node.root)) and _pod_cgroups(node.cgroup_root)
    node.start()
    await kenv.ready(node)
    await kenv.wait_status("left", lambda s: s["containerStatuses"][0]["containerID"] == cid and
                           s["containerStatuses"][0]["restartCount"] == 0, 20, "re-adopted")
    node.kill9()
    await asyncio.to_thread(lambda: cleanup(kenv.base, bridge=False))   # other tests share kubelite0
    assert not _procs_mentioning(str(node.root))
    assert not _mounts_under(str(node.root)) and not _pod_cgroups(node.cgroup_root)


async def test_init_containers_in_order_emptydir_and_termination_message(kenv: Env) -> None:
    node = kenv.node()
    await kenv.ready(node)
    vol = [{"name": "work", "mountPath": "/work"}]
    pod = pod_manifest("init", node.name,
                       container("c", "cat /work/order; echo -n done-$(cat /work/order | wc -l) > /dev/termination-log",
                                 volumeMounts=vol),
                       initContainers=[container("first", "echo first >> /work/order", volumeMounts=vol),
                                       container("second", "echo second >> /work/order", volumeMounts=vol)],
                       volumes=[{"name": "work", "emptyDir": {}}], restartPolicy="Never")
    await kenv.client.create("pods", pod, "default")
    s = await kenv.wait_status("init", lambda s: s.get("phase") == "Succeeded", 30, "Succeeded")
    assert [i["state"]["terminated"]["reason"] for i in s["initContainerStatuses"]] == ["Completed", "Completed"]
    assert conditions(s)["Initialized"] == "True"
    term = s["containerStatuses"][0]["state"]["terminated"]
    assert term["message"] == "done-2"
    assert (await _logs(kenv, node, "init", "")) == "first\nsecond\n"


async def test_image_pull_errors_backoff_and_never(kenv: Env) -> None:
    from tests.support.cluster import free_port
    node = kenv.node()
    await kenv.ready(node)
    image = f"127.0.0.1:{free_port()}/missing:1"          # nothing listens there: the pull fails
    await kenv.client.create("pods", pod_manifest("nopull", node.name, {"name": "c", "image": image}), "default")
    await kenv.client.create("pods", pod_manifest("never", node.name, {"name": "c", "image": "absent:9",
                                                                        "imagePullPolicy": "Never"}), "default")
    def reason(s: dict) -> str:
        return ((s.get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting", {}).get("reason", "")

    s = await kenv.wait_status("nopull", lambda s: reason(s) == "ImagePullBackOff", 30, "ImagePullBackOff")
    assert image in s["containerStatuses"][0]["state"]["waiting"]["message"]
    s = await kenv.wait_status("never", lambda s: reason(s) == "ErrImageNeverPull", 30, "ErrImageNeverPull")
    assert "not present with pull policy of Never" in s["containerStatuses"][0]["state"]["waiting"]["message"]
    assert s["phase"] == "Pending"


async def test_host_network_pod_http_and_tcp_probes(kenv: Env) -> None:
    from tests.support.cluster import free_port
    node = kenv.node()
    await kenv.ready(node)
    port = free_port()
    c = container("c", f"echo ok > /tmp/healthz; httpd -p 127.0.0.1:{port} -h /tmp; exec sleep 1000",
                  readinessProbe={"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 1},
                  livenessProbe={"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 3})
    await kenv.client.create("pods", pod_manifest("hostnet", node.name, c, hostNetwork=True), "default")
    s = await kenv.wait_status("hostnet", lambda s: conditions(s).get("Ready") == "True", 30, "Ready by httpGet")
    assert s["podIP"] == s["hostIP"]
    # the server goes away: readiness drops, liveness (tcp) restarts the container
    await _exec(kenv, node, "hostnet", ["rm", "/tmp/healthz"])
    await kenv.wait_status("hostnet", lambda s: conditions(s).get("Ready") == "False", 15, "not Ready")
    await _exec(kenv, node, "hostnet", ["killall", "httpd"])
    s = await kenv.wait_status("hostnet", lambda s: s["containerStatuses"][0]["restartCount"] == 1 and
                               conditions(s).get("Ready") == "True", 30, "restarted by liveness, Ready again")


async def _check_metrics_and_stats(kenv: Env, node) -> None:  # type: ignore[no-untyped-def]
    """The kubelet's /metrics, /metrics/cadvisor and /stats/summary describe the running pod for real."""
    import aiohttp
    n = await kenv.client.get("nodes", node.name)
    base = f"http://127.0.0.1:{n['status']['daemonEndpoints']['kubeletEndpoint']['Port']}"

    async def metrics() -> str:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/metrics") as r:
                text = await r.text()
        return text if "kubelet_running_pods 1.0" in text and \
            'kubelet_running_containers{container_state="running"} 2.0' in text else ""
    text = await wait_for(metrics, 10, "kubelet_running_pods 1, kubelet_running_containers 2")
    assert "kubelet_pod_start_duration_seconds_count 1.0" in text
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/metrics/cadvisor") as r:
            cad = await r.text()
        async with s.get(f"{base}/stats/summary") as r:
            summary = await r.json()
    ws = [line for line in cad.splitlines() if line.startswith("container_memory_working_set_bytes{") and
          'pod="two"' in line]
    assert len(ws) == 2 and all(float(line.rsplit(" ", 1)[1]) > 0 for line in ws), ws
    pod = next(p for p in summary["pods"] if p["podRef"]["name"] == "two")
    assert {c["name"] for c in pod["containers"]} == {"server", "client"}
    assert all(c["memory"]["workingSetBytes"] > 0 for c in pod["containers"])
