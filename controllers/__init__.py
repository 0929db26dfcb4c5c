"""kubelite's controllers (replicaset, deployment, garbagecollector, nodelifecycle with the NoExecute
taint manager, podgc, nodeipam) and the controller-manager that runs them (``python -m controllers``).
They talk to the apiserver only through ``kubelite.client`` and read it through shared informers."""
