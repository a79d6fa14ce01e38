.PHONY: demo test check setup bench bench-cpu bench-demo bench-analytics bench-drift bench-load lint

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

bench:  ## the decision-cost ratio to /healthz (sequential and 16 clients) on the demo plus 1,000,000 decisions, SQLite and PostgreSQL
	./scripts/setup.sh --test && .venv/bin/python -m bench.loop

bench-cpu:  ## CPU per UI and API decision in-process, beside /healthz, with a cProfile of the UI path
	./scripts/setup.sh --test && .venv/bin/python -m bench.decide_cpu --profile ui

bench-demo:  ## seconds from the end of setup to the demo's first page
	./scripts/setup.sh && .venv/bin/python -m bench.demo_start

bench-analytics:  ## model owner pages on the demo plus 1,000,000 decisions, SQLite and PostgreSQL, beside /healthz (several minutes)
	./scripts/setup.sh --test && .venv/bin/python -m bench.analytics

bench-drift:  ## the drift page at 1,000,000 recommendations beside the models page, SQLite and PostgreSQL (several minutes)
	./scripts/setup.sh --test && .venv/bin/python -m bench.drift

bench-load:  ## Locust: 50 reviewers + model services against gunicorn on the demo plus 1,000,000 decisions, PostgreSQL and SQLite (about 30 minutes)
	./scripts/setup.sh --test && .venv/bin/python -m bench.load
