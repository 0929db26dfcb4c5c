#!/usr/bin/env bash
# Set up (with test extras) and run the whole test suite: layering contracts, then pytest.
# Usage: bash scripts/test.sh [pytest args...]     (as root: e2e tests make real containers)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh --test
VENV=${VENV:-$here/.venv}
# Tests never reach a registry other than the loopback ones they start.
export KUBELITE_OFFLINE=1
"$VENV/bin/lint-imports" pyproject.toml
exec "$VENV/bin/python" -m pytest "$@"
