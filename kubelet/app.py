"""Assembly of a running kubelet: flags, the API client, runtime and image service, the pod informer,
node status and lease, the kubelet server, and signals.

SIGTERM/SIGINT stop the kubelet and leave its containers running (as the real kubelet does);
``--stop-pods-on-exit`` or SIGUSR1 (what ``kubelite up`` sends on Ctrl-C) stop its pods first, keeping
the API objects. Blocking set-up (image store, runtime state) happens off the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import ipaddress
import json
import logging
import signal
import socket
from pathlib import Path
from typing import Any

from kubelite.api.resources import NODES, PODS
from kubelet.kubelet import Kubelet, KubeletConfig
from kubelet.nodestatus import KUBELET_VERSION, NodeStatusManager
from kubelet.server import bound_port, serve

logger = logging.getLogger(__name__)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kubelet", description="kubelite's node agent")
    p.add_argument("--node-name", default=socket.gethostname().split(".")[0].lower())
    p.add_argument("--kubeconfig", default=None, help="kubeconfig of the apiserver (default: $KUBECONFIG)")
    p.add_argument("--root-dir", default=None, help="default /var/lib/kubelite/kubelet/<node-name>")
    p.add_argument("--runtime-root", default=None, help="the runtime's state (default <root-dir>/runtime)")
    p.add_argument("--image-root", default=None, help="the node's image store (default: the images part's)")
    p.add_argument("--cgroup-root", default=None, help="default kubelite/<node-name>")
    p.add_argument("--pod-cidr", default="", help="until the controller-manager sets spec.podCIDR")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--pod-cidr-wait", type=float, default=5.0,
                   help="seconds to wait at start for spec.podCIDR when there is no --pod-cidr")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--address", default="127.0.0.1", help="where the kubelet API listens")
    p.add_argument("--port", type=int, default=10250, help="0 picks a free port (reported in the Node)")
    p.add_argument("--node-ip", default="", help="the Node's InternalIP (default: --address, or 127.0.0.1)")
    p.add_argument("--token-file", default="", help="bearer token the API requires (needed off loopback)")
    p.add_argument("--crash-loop-base", type=float, default=10.0, help="CrashLoopBackOff's first delay, seconds")
    p.add_argument("--crash-loop-max", type=float, default=300.0)
    p.add_argument("--stop-pods-on-exit", action="store_true", help="stop this node's pods on SIGTERM/SIGINT")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p.parse_args(argv)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _make_client(kubeconfig: str | None) -> Any:
    from kubelite.client import Client
    return Client.from_kubeconfig(kubeconfig, user_agent=f"kubelet/{KUBELET_VERSION}")


def _lean_writes(client: Any) -> Any:
    """``client`` with the hot writes (pod status patches, Events: creates and patches) on kubelite's lean
    HTTP/1.1 pool: through aiohttp each costs more of the kubelet's CPU than the status it writes."""
    from kubelite.client.fastwriter import FastWriter

    return FastWriter(client)


def _accepted(factory: Any, **kwargs: Any) -> dict[str, Any]:
    params = inspect.signature(factory).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _image_store(image_root: str | None) -> Any:
    from kubelet.runtime.images import ImageError, ImageStore, ensure_base_images
    store = ImageStore(image_root) if image_root else ImageStore()
    try:
        ensure_base_images(store)                      # offline busybox:1.35 (needs busybox-static)
    except (ImageError, OSError) as exc:
        logger.warning("base image busybox:1.35 not available: %s", exc)
    return store


def _image_service(store: Any) -> Any:
    """The images part's ImageService on the node's store, with the store's registry settings."""
    from kubelet.runtime.images.registry import RegistryConfig
    from kubelet.runtime.images.service import ImageService
    return ImageService(store, RegistryConfig.load(store.root))


async def run(args: argparse.Namespace) -> int:
    node = args.node_name
    root = Path(args.root_dir or f"/var/lib/kubelite/kubelet/{node}").resolve()
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    token = Path(args.token_file).read_text().strip() if args.token_file else ""
    if not _is_loopback(args.address) and not token:
        logger.error("--address %s is not loopback: a --token-file is required", args.address)
        return 2
    node_ip = args.node_ip or (args.address if args.address not in ("0.0.0.0", "::") else "127.0.0.1")
    cgroup_root = args.cgroup_root or f"kubelite/{node}"
    runtime_root = args.runtime_root or str(root / "runtime")
    marker = {"nodeName": node, "runtimeRoot": runtime_root, "cgroupRoot": cgroup_root,
              "clusterCidr": args.cluster_cidr}
    await asyncio.to_thread((root / "node.json").write_text, json.dumps(marker))   # for `kubelite down`
    client = _make_client(args.kubeconfig)
    store = await asyncio.to_thread(_image_store, args.image_root)
    images = _image_service(store)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    stop_pods = args.stop_pods_on_exit
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(signal.SIGUSR1, stopping.set)
    # the Node first: its spec.podCIDR (from the controller-manager, or --pod-cidr) sizes the pod network
    nodes = NodeStatusManager(client, node_name=node, root_dir=root, host_ip=node_ip, port=args.port,
                              max_pods=args.max_pods, pod_cidr=args.pod_cidr)
    if not await _register(nodes, stopping):
        await _close(client)
        return 0
    pod_cidr = await _wait_pod_cidr(nodes, stopping, args.pod_cidr_wait)
    marker["podCidr"] = pod_cidr
    await asyncio.to_thread((root / "node.json").write_text, json.dumps(marker))
    from kubelet.runtime.service import Runtime
    network = await asyncio.to_thread(_node_network, pod_cidr, args.cluster_cidr, runtime_root)
    rt_kwargs = _accepted(Runtime, root=runtime_root, node_name=node, cgroup_root=cgroup_root, image_store=store,
                          pod_cidr=pod_cidr, cluster_cidr=args.cluster_cidr, network=network)
    async with contextlib.AsyncExitStack() as stack:
        runtime = await stack.enter_async_context(Runtime(**rt_kwargs))
        writer = _lean_writes(client)
        stack.push_async_callback(writer.close)
        recorder = _recorder(writer, node)
        kubelet = Kubelet(KubeletConfig(node, root, host_ip=node_ip, crash_loop_base=args.crash_loop_base,
                                        crash_loop_cap=args.crash_loop_max, max_pods=args.max_pods),
                          writer, runtime, images, recorder)
        kubelet.stop_pods_on_exit = stop_pods
        runner = await serve(kubelet, args.address, args.port, token)
        stack.push_async_callback(runner.cleanup)
        nodes.port = bound_port(runner)
        nodes.ready = lambda: (kubelet.pleg.healthy(), "PLEG is not healthy")
        nodes.recorder = recorder
        if recorder is not None and nodes.node:
            recorder.event(nodes.node, "Normal", "Starting", "Starting kubelet.")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, kubelet.stop)
        loop.add_signal_handler(signal.SIGUSR1, lambda: kubelet.stop(stop_pods=True))
        if stopping.is_set():
            kubelet.stop()
        await nodes.report(force=True)
        kubelet.node_allocatable = dict(nodes.allocatable)
        logger.info("kubelet %s serving on %s:%d (root %s, pod CIDR %s)", node, args.address, nodes.port, root,
                    pod_cidr or "none")
        from kubelite.informer import Informer
        informer = Informer(client, PODS, field_selector=f"spec.nodeName={node}")
        informer.add_handler(kubelet.pod_added, kubelet.pod_updated, kubelet.pod_deleted)
        async with asyncio.TaskGroup() as tg:
            background = [tg.create_task(informer.run()), tg.create_task(nodes.run())]
            if recorder is not None and hasattr(recorder, "run"):
                background.append(tg.create_task(recorder.run()))
            main = tg.create_task(kubelet.run())
            await informer.wait_for_sync()
            kubelet.mark_synced()
            await main
            for t in background:
                t.cancel()
    if kubelet.stop_pods_on_exit and network is not None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(network.remove)        # the node's gateway address off the bridge
    await _close(client)
    return 0


async def _register(nodes: NodeStatusManager, stopping: asyncio.Event) -> bool:
    """Register until it works (the apiserver may not be up yet); False if told to stop meanwhile."""
    delay = 0.2
    while not stopping.is_set():
        try:
            await nodes.register(report=False)
            return True
        except Exception as exc:                           # ApiError, OSError, the client's connection errors
            logger.warning("registering node %s: %s (retrying)", nodes.node_name, exc)
        try:
            await asyncio.wait_for(stopping.wait(), delay)
        except asyncio.TimeoutError:
            pass
        delay = min(delay * 2, 5.0)
    return False


async def _wait_pod_cidr(nodes: NodeStatusManager, stopping: asyncio.Event, timeout: float = 20.0) -> str:
    """The node's spec.podCIDR, or --pod-cidr; without either, wait a while for the controller-manager."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not nodes.effective_pod_cidr and not stopping.is_set():
        if asyncio.get_running_loop().time() > deadline:
            logger.warning("node %s has no podCIDR (no --pod-cidr, none allocated): pods get no network",
                           nodes.node_name)
            return ""
        try:
            nodes.node = await nodes.client.get(NODES, nodes.node_name)
        except Exception as exc:
            logger.info("waiting for podCIDR: %s", exc)
        try:
            await asyncio.wait_for(stopping.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    return nodes.effective_pod_cidr


def _node_network(pod_cidr: str, cluster_cidr: str, runtime_root: str) -> Any:
    """node-infra's NodeNetwork for this node (bridge ensured), or None without a pod CIDR."""
    if not pod_cidr:
        return None
    try:
        from kubelet.runtime.network import NodeNetwork
        net = NodeNetwork(pod_cidr, cluster_cidr, Path(runtime_root) / "ipam")
        net.ensure()
        return net
    except (ImportError, ValueError, OSError) as exc:
        logger.warning("pod network for %s not set up: %s", pod_cidr, exc)
        return None


def _recorder(client: Any, node: str) -> Any:
    from kubelite.events import EventRecorder
    return EventRecorder(client, "kubelet", node)


async def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        result = close()
        if inspect.isawaitable(result):
            await result


def main(argv: list[str] | None = None) -> int:
    import sys
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else
                        logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args))
