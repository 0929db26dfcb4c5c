"""The container runtime: images, snapshots (overlayfs), sandboxes, OCI bundles and runtime, cgroups, network.

It does what the kubelet decides; the kubelet reaches it only through the Protocols in ``kubelet.cri``.
"""
