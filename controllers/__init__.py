"""kubelite's controllers (replicaset, deployment, garbage collector, node lifecycle) and their manager."""
