#!/bin/sh
# Run both spinners, let them compete, then compare: cpu.shares 1536 vs 512, CPU used ≈ 3:1.
set -e
here=$(dirname "$0")
kubelite apply -f "$here/09-cpu-shares.yaml"
kubectl wait --for=condition=Ready pod/shares-demo --timeout=90s
kubelite inspect pod shares-demo | grep -E "^│  ├─ (big|small)|cpu.shares"
sleep 5
kubelite top pod shares-demo --containers
kubelite delete -f "$here/09-cpu-shares.yaml"
