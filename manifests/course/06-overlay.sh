#!/bin/sh
# Build a 4-layer image into the node's image store, run two pods from it, and compare their overlays.
# Usage: KUBECONFIG=... manifests/course/06-overlay.sh [IMAGE_ROOT]   (IMAGE_ROOT: the kubelet's --image-root)
set -e
here=$(dirname "$0")
root=${1:+--root $1}
kubelite image $root build -t course/layers:1 "$here/06-overlay"
kubelite image $root history course/layers:1
kubelite apply -f "$here/06-overlay.yaml"
kubectl wait --for=condition=Ready pod/overlay-one pod/overlay-two --timeout=90s
kubelite inspect pod overlay-one | sed -n '/rootfs/,/network/p'
kubelite inspect pod overlay-two | sed -n '/rootfs/,/network/p'
