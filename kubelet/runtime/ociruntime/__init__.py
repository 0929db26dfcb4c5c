"""kubelite's own OCI runtime: create / start / state / kill / delete (+ exec) over an OCI bundle.

Fast path: ``forkserver`` (one pre-imported, single-threaded Python per node) forks a ``shim`` per
container, which forks the container through ``init``; the OCI CLI (``python -m
kubelet.runtime.ociruntime``) does the same by forking the shim directly. State lives in ``state``;
the verbs are in ``ops``; cgroups are reached only through ``cgroupfs``.
"""
