"""Scheduler plugins, one file per plugin, as kube-scheduler has them; ``default_plugins()`` builds the
default profile's set with kube-scheduler's score weights."""

from __future__ import annotations

from scheduler.framework import Plugin
from scheduler.plugins.balanced_allocation import BalancedAllocation
from scheduler.plugins.defaultpreemption import DefaultPreemption
from scheduler.plugins.interpodaffinity import InterPodAffinity
from scheduler.plugins.nodeaffinity import NodeAffinity
from scheduler.plugins.nodename import NodeName
from scheduler.plugins.noderesources_fit import NodeResourcesFit
from scheduler.plugins.nodeunschedulable import NodeUnschedulable
from scheduler.plugins.podtopologyspread import PodTopologySpread
from scheduler.plugins.tainttoleration import TaintToleration

# kube-scheduler's default score weights (pkg/scheduler/apis/config/v1/default_plugins.go).
SCORE_WEIGHTS: dict[str, int] = {
    "NodeResourcesFit": 1, "NodeResourcesBalancedAllocation": 1, "TaintToleration": 3,
    "NodeAffinity": 2, "PodTopologySpread": 2, "InterPodAffinity": 2,
}


def default_plugins() -> list[Plugin]:
    """The default profile, in kube-scheduler's order (cheap filters first)."""
    return [NodeUnschedulable(), NodeName(), TaintToleration(), NodeAffinity(), NodeResourcesFit(),
            PodTopologySpread(), InterPodAffinity(), BalancedAllocation(), DefaultPreemption()]


__all__ = ["SCORE_WEIGHTS", "default_plugins", "BalancedAllocation", "DefaultPreemption", "InterPodAffinity",
           "NodeAffinity", "NodeName", "NodeResourcesFit", "NodeUnschedulable", "PodTopologySpread",
           "TaintToleration"]
