#!/usr/bin/env bash
# Set everything up and start Countersign (web server and one worker) on SQLite with realistic demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# Served over plain HTTP on loopback, so the session cookie cannot be HTTPS-only here.
export COUNTERSIGN_SESSION_COOKIE_SECURE=false
countersign db upgrade
countersign seed-demo --mine-in-worker  # the worker started below mines the retraining backlog
# One worker runs the background jobs (analyses, exports, refreshes, webhooks, guardrail sweeps);
# its queue is a SQLite file next to the database. Ctrl-C stops the server and then the worker.
countersign worker &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT
echo
echo "Countersign is starting on http://127.0.0.1:${PORT:-8000} with one background worker  (Ctrl-C stops both)"
# Two web workers serve one person trying the demo; `countersign serve` alone sizes them to the cores.
countersign serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}"
