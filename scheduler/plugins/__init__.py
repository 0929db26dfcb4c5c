"""Scheduler plugins, one file per plugin, as kube-scheduler has them."""
