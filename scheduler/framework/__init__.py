"""The scheduling framework: plugin Protocols, Status, CycleState, NodeInfo, and the runner.

Pure logic (no I/O) except the Bind extension point; public surface re-exported here.
"""

from scheduler.framework.interface import (
    MAX_NODE_SCORE, MIN_NODE_SCORE, SUCCESS, BindPlugin, Code, CycleState, Diagnosis, FilterPlugin,
    FitError, NormalizeScorePlugin, Plugin, PostFilterPlugin, PreFilterPlugin, PreScorePlugin,
    ReservePlugin, ScorePlugin, Status, fit_error_message,
)
from scheduler.framework.nodeinfo import NodeInfo, PodInfo, pod_key
from scheduler.framework.resources import Resource, parse_quantity, pod_requests

__all__ = [
    "MAX_NODE_SCORE", "MIN_NODE_SCORE", "SUCCESS", "BindPlugin", "Code", "CycleState", "Diagnosis",
    "FilterPlugin", "FitError", "NormalizeScorePlugin", "Plugin", "PostFilterPlugin", "PreFilterPlugin",
    "PreScorePlugin", "ReservePlugin", "ScorePlugin", "Status", "fit_error_message", "NodeInfo",
    "PodInfo", "pod_key", "Resource", "parse_quantity", "pod_requests",
]
