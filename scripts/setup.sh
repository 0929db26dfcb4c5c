#!/usr/bin/env bash
# Set up kubelite on this machine: Debian packages, a Python >= 3.12 virtualenv in .venv, the project.
# Usage: bash scripts/setup.sh [--test]      (as root; idempotent; --test adds the test extras)
# Env:   VENV (default: <repo>/.venv)  PYTHON (an interpreter >= 3.12 to build the venv from)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$here/.venv}
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

apt_pkgs=(etcd-server etcd-client busybox-static iproute2 runc crun conmon skopeo umoci docker-registry prometheus curl zstd zsh)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for c in python3.12 python3.13 python3; do
    for p in $(command -v -a "$c" 2>/dev/null) /root/.pyenv/versions/3.1[23]*/bin/$c /usr/bin/$c /usr/local/bin/$c; do
      [ -x "$p" ] || continue
      if "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
        "$p" -c 'import sys; print(sys.executable)'; return
      fi
    done
  done
  echo "setup: no Python >= 3.12 found (set PYTHON=/path/to/python3.12)" >&2; exit 2
}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then
  py=$(pick_python)
  echo "setup: creating $VENV with $py" >&2
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
fi
# compat editable mode: a plain .pth path entry, no import-hook finder (that one imports pathlib & co.
# at every interpreter start, which `kubelite get` pays for)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$here$extras" \
    --config-settings editable_mode=compat 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$VENV/bin/python" -c 'import kubelite, aiohttp, aetcd, yaml' || { echo "setup: install failed" >&2; exit 1; }
echo "setup: ready ($VENV)" >&2
