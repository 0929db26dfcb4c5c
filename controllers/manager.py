"""The controller-manager: builds the enabled controllers on shared informers, runs each with N
workers through ``kubelite.controller.Controller``, plus the periodic passes (node monitor, PodGC).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.resources import DEPLOYMENTS, LEASES, NODES, PODS, REPLICASETS
from kubelite.controller import Controller
from kubelite.events import EventRecorder
from kubelite.informer import INDEX_NAMESPACE, INDEX_NODE_NAME, SharedInformerFactory, index_by_namespace, index_by_node_name
from kubelite.workqueue import RateLimitingQueue
from controllers.deployment import DeploymentController
from controllers.garbagecollector import GarbageCollector
from controllers.nodeipam import NodeIpamController
from controllers.nodelifecycle import LEASE_NAMESPACE, NodeLifecycleController
from controllers.podgc import PodGC
from controllers.replicaset import ReplicaSetController

logger = logging.getLogger(__name__)

ALL_CONTROLLERS = ("replicaset", "deployment", "garbagecollector", "nodelifecycle", "podgc", "nodeipam")


@dataclass(frozen=True, slots=True)
class ManagerConfig:
    controllers: tuple[str, ...] = ALL_CONTROLLERS
    concurrent_replicaset_syncs: int = 5
    concurrent_deployment_syncs: int = 5
    concurrent_gc_syncs: int = 20
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 50.0
    node_startup_grace_period: float = 60.0
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    allocate_node_cidrs: bool = True
    terminated_pod_gc_threshold: int = 12500
    podgc_period: float = 20.0
    extra: dict[str, Any] = field(default_factory=dict)


class ControllerManager:
    def __init__(self, client: Any, config: ManagerConfig) -> None:
        self.client = client
        self.config = config
        self.factory = SharedInformerFactory(client)
        idx = {INDEX_NAMESPACE: index_by_namespace, INDEX_NODE_NAME: index_by_node_name}
        self.pods = self.factory.informer(PODS, indexers=idx)
        self.recorder = EventRecorder(client, "controller-manager")
        self.runners: list[Controller] = []
        self.periodic: list[tuple[float, Any]] = []
        self.instances: dict[str, Any] = {}
        for name in config.controllers:
            getattr(self, f"_build_{name}")()

    def _rs_informer(self) -> Any:
        return self.factory.informer(REPLICASETS, indexers={INDEX_NAMESPACE: index_by_namespace})

    def _build_replicaset(self) -> None:
        rs_inf = self._rs_informer()
        queue = RateLimitingQueue("replicaset")
        ctl = ReplicaSetController(self.client, rs_inf.store, self.pods.store, queue, self.recorder)
        runner = Controller("replicaset", ctl.sync, informers=[rs_inf, self.pods],
                            workers=self.config.concurrent_replicaset_syncs, recorder=self.recorder, queue=queue)
        self.runners.append(runner)
        rs_inf.add_handler(ctl.on_rs_add, ctl.on_rs_update, ctl.on_rs_delete)
        self.pods.add_handler(ctl.on_pod_add, ctl.on_pod_update, ctl.on_pod_delete)
        self.instances["replicaset"] = ctl

    def _build_deployment(self) -> None:
        d_inf = self.factory.informer(DEPLOYMENTS, indexers={INDEX_NAMESPACE: index_by_namespace})
        rs_inf = self._rs_informer()
        queue = RateLimitingQueue("deployment")
        ctl = DeploymentController(self.client, d_inf.store, rs_inf.store, self.pods.store, queue, self.recorder)
        self.runners.append(Controller("deployment", ctl.sync, informers=[d_inf, rs_inf, self.pods],
                                       workers=self.config.concurrent_deployment_syncs, recorder=self.recorder,
                                       queue=queue))
        d_inf.add_handler(ctl.on_deployment_add, ctl.on_deployment_update, ctl.on_deployment_delete)
        rs_inf.add_handler(ctl.on_rs_add, ctl.on_rs_update, ctl.on_rs_delete)
        self.pods.add_handler(None, None, ctl.on_pod_delete)
        self.instances["deployment"] = ctl

    def _build_garbagecollector(self) -> None:
        queue = RateLimitingQueue("garbage_collector_attempt_to_delete")
        gc = GarbageCollector(self.client, queue)
        informers = [self.pods, self._rs_informer(), self.factory.informer(DEPLOYMENTS)]
        for inf in informers:
            inf.add_handler(gc.on_add, gc.on_update, gc.on_delete)
        self.runners.append(Controller("garbagecollector", gc.sync, informers=informers,
                                       workers=self.config.concurrent_gc_syncs, recorder=self.recorder, queue=queue))
        self.instances["garbagecollector"] = gc

    def _build_nodelifecycle(self) -> None:
        nodes = self.factory.informer(NODES)
        leases = self.factory.informer(LEASES, namespace=LEASE_NAMESPACE)
        queue = RateLimitingQueue("nodelifecycle")
        ctl = NodeLifecycleController(self.client, nodes.store, self.pods.store, queue, self.recorder,
                                      grace_period=self.config.node_monitor_grace_period,
                                      startup_grace_period=self.config.node_startup_grace_period)
        nodes.add_handler(ctl.on_node, ctl.on_node_update, ctl.on_node_delete)
        leases.add_handler(ctl.on_lease, ctl.on_lease_update, None)
        self.runners.append(Controller("nodelifecycle", ctl.sync, informers=[nodes, leases, self.pods],
                                       workers=2, recorder=self.recorder, queue=queue))
        self.periodic.append((self.config.node_monitor_period, ctl.resync))
        self.instances["nodelifecycle"] = ctl

    def _build_podgc(self) -> None:
        nodes = self.factory.informer(NODES)
        gc = PodGC(self.client, self.pods.store, nodes.store, self.config.terminated_pod_gc_threshold)
        self.periodic.append((self.config.podgc_period, gc.sync))
        self.instances["podgc"] = gc

    def _build_nodeipam(self) -> None:
        if not self.config.allocate_node_cidrs:
            return
        nodes = self.factory.informer(NODES)
        queue = RateLimitingQueue("nodeipam")
        ctl = NodeIpamController(self.client, nodes.store, queue, self.recorder, self.config.cluster_cidr,
                                 self.config.node_cidr_mask_size)
        nodes.add_handler(ctl.on_node, ctl.on_node_update, ctl.on_node_delete)
        # one worker: allocations must not race each other
        self.runners.append(Controller("nodeipam", ctl.sync, informers=[nodes], workers=1,
                                       recorder=self.recorder, queue=queue))
        self.instances["nodeipam"] = ctl

    async def _every(self, period: float, fn: Any) -> None:
        await self.factory.wait_for_cache_sync()
        while True:
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("periodic %s", getattr(fn, "__qualname__", fn))
            await asyncio.sleep(period)

    async def run(self) -> None:
        """Run informers, the event recorder, every controller and the periodic passes until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.factory.run())
            tg.create_task(self.recorder.run())
            for r in self.runners:
                tg.create_task(r.run(), name=f"controller {r.name}")
            for period, fn in self.periodic:
                tg.create_task(self._every(period, fn))
