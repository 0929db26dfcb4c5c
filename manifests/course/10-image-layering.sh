#!/bin/sh
# Build, look at the history (one layer per RUN), see the whiteout, run it.
# Usage: KUBECONFIG=... manifests/course/10-image-layering.sh [IMAGE_ROOT]
set -e
here=$(dirname "$0")
root=${1:+--root $1}
kubelite image $root build -t course/whiteout:1 "$here/10-image-layering"
kubelite image $root history --files course/whiteout:1
kubelite apply -f "$here/10-image-layering.yaml"
kubectl wait --for=condition=Ready pod/layering-demo --timeout=90s
kubectl logs layering-demo
