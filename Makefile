.PHONY: demo test check setup bench bench-analytics bench-drift bench-load lint

demo:   ## set up, seed demo data, serve on http://127.0.0.1:8000 with one background worker
	./scripts/demo.sh

test:   ## set up (PostgreSQL and Chromium too) and run the whole suite
	./scripts/test.sh

check:  ## lint, types and the unit tests (no PostgreSQL, no browser): about a minute
	./scripts/setup.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/python -m pytest -q -n auto tests/unit -k "not postgresql"

setup:
	./scripts/setup.sh

lint:
	.venv/bin/ruff check .

bench:  ## ingest and decision timings on the demo's history (SQLite, PostgreSQL), with the decision-cost ratio to /healthz
	./scripts/setup.sh --test && .venv/bin/python -m bench.loop

bench-analytics:  ## model owner pages at 1,000,000 decisions on SQLite and PostgreSQL (several minutes)
	./scripts/setup.sh --test && .venv/bin/python -m bench.analytics

bench-drift:  ## the drift page at 1,000,000 recommendations beside the models page, SQLite and PostgreSQL (several minutes)
	./scripts/setup.sh --test && .venv/bin/python -m bench.drift

bench-load:  ## Locust: 50 reviewers + model services against gunicorn on PostgreSQL and SQLite (about 17 minutes)
	./scripts/setup.sh --test && .venv/bin/python -m bench.load
