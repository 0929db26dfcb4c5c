#!/bin/sh
# Run a real Prometheus that scrapes the kubelite cluster of $KUBECONFIG (or --kubeconfig FILE):
# kubelets discovered through the apiserver and scraped through nodes/proxy, plus the apiserver,
# its object metrics, the scheduler and the controller-manager. UI: http://127.0.0.1:9090/
#   scripts/prometheus.sh --kubeconfig /var/lib/kubelite/kubeconfig
# (`kubelite up --prometheus` starts the same thing as part of the cluster.)
cd "$(dirname "$0")/.." && exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" \
    "${PYTHON:-python3}" -m kubelite prometheus --scheduler-port 10259 --controller-manager-port 10257 "$@"
