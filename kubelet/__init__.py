"""kubelite's node agent: runs the pods bound to its node through the runtime and reports their status.

Map of the package (Kubernetes' names in brackets):

- ``app`` — ``python -m kubelet``: flags, assembly, signals. ``kubelet`` — the core: informer handlers,
  the per-pod ``sync``, housekeeping, admission. ``pod_workers`` [pod_workers.go], ``pleg`` [pleg/generic.go],
  ``status_manager`` [status/status_manager.go], ``prober`` + ``handlers`` [prober, lifecycle].
- Pure decisions (no I/O): ``planner`` [computePodActions, CrashLoopBackOff], ``podstatus``
  [generateAPIPodStatus/getPhase], ``envvars`` [$(VAR) expansion, downward API], ``qos`` [QoS, cgroup parent,
  resources], ``containerconfig`` [CRI configs, securityContext].
- Doing: ``kuberuntime`` [kuberuntime_manager SyncPod], ``volumes`` [AtomicWriter], ``images`` [pull policy,
  backoff, pull secrets], ``gc`` [container/image GC, log rotation], ``logs`` [CRI log format].
- Node and API: ``nodestatus`` [node status, Lease], ``server`` + ``streaming`` + ``stats`` [kubelet server:
  containerLogs, exec (channel.k8s.io), /stats/summary, /metrics, /metrics/cadvisor], ``metrics``.
- ``cri`` — the seam to ``kubelet.runtime``; ``testing`` — fakes of its services for tests; ``inspect`` —
  ``/inspect/pods|node`` for ``kubelite inspect``.
"""
