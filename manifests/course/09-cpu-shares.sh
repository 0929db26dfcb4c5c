#!/bin/sh
# Run both spinners, let them compete, then compare: cpu.shares 1536 vs 512, CPU used ≈ 3:1.
set -e
here=$(dirname "$0")
kubelite apply -f "$here/09-cpu-shares.yaml"
kubectl wait --for=condition=Ready pod/shares-big pod/shares-small --timeout=90s
kubelite inspect pod shares-big | grep cpu.shares
kubelite inspect pod shares-small | grep cpu.shares
sleep 5
kubelite top pod shares-big
kubelite top pod shares-small
kubelite delete -f "$here/09-cpu-shares.yaml"
