#!/usr/bin/env bash
# Set everything up (PostgreSQL and Chromium included) and run the whole suite:
# lint, then pytest on SQLite and on a throwaway PostgreSQL server, browser tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
export COUNTERSIGN_REQUIRE_POSTGRES=1 COUNTERSIGN_REQUIRE_BROWSER=1
echo "==> ruff"
ruff check .
ruff format --check .
echo "==> mypy"
mypy
echo "==> pytest"
# One worker per core; a test file stays on one worker, so its module fixtures are built once.
exec python -m pytest -n "${COUNTERSIGN_TEST_WORKERS:-auto}" --dist loadfile "$@"
