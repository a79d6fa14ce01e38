#!/usr/bin/env bash
# Set everything up and start Countersign on SQLite with realistic demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# Served over plain HTTP on loopback, so the session cookie cannot be HTTPS-only here.
export COUNTERSIGN_SESSION_COOKIE_SECURE=false
countersign db upgrade
countersign seed-demo
echo
echo "Countersign is starting on http://127.0.0.1:${PORT:-8000}  (Ctrl-C stops it)"
exec countersign serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
