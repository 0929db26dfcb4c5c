"""Hollow nodes: a fake kubelet (like kwok) that registers N nodes, renews their Leases and marks
the pods bound to them Running without containers, so the control plane can be driven at scale."""
