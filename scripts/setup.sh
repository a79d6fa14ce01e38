#!/usr/bin/env bash
# Set up Countersign on this machine: Python venv with pinned packages, front-end packages
# from package-lock.json, and (with --test) Debian's PostgreSQL and Chromium for the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[[ "${1:-}" == "--test" ]] && with_test=1

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "==> installing Debian packages: ${missing[*]}"
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

command -v npm >/dev/null || apt_install nodejs npm
if [[ $with_test -eq 1 ]]; then
  apt_install postgresql chromium
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.countersign-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp || requirements/constraints.txt -nt $stamp ]]; then
  echo "==> installing Python packages (pinned)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -e ".[test]"
  touch "$stamp"
fi

# The devDependencies (axe-core for the browser tests' accessibility checks) only with --test;
# the app serves none of them (webapp/views/vendor.py lists what it serves).
npm_dev=(--omit=dev); dev_missing=0
if [[ $with_test -eq 1 ]]; then
  npm_dev=(--include=dev)
  [[ -d node_modules/axe-core ]] || dev_missing=1
fi
if [[ ! -d node_modules/htmx.org || $dev_missing -eq 1 || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "==> installing front-end packages from package-lock.json"
  npm ci "${npm_dev[@]}" --no-audit --no-fund --loglevel=error
fi
echo "==> setup done"
