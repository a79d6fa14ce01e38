"""A live Countersign server and Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from feedback import migrate
from tests.factories import make_model, make_user

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE_BROWSER = os.environ.get("COUNTERSIGN_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]


@pytest.fixture
def live(tmp_path: Any) -> Iterator[dict[str, Any]]:
    """A threaded server on loopback over a fresh SQLite database with a model and a reviewer.

    The test's own engine and session live outside any app context: Playwright runs an event
    loop on this thread, and Flask's app-context teardown must not run here.
    """
    from webapp import create_app, worker

    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    own = Session(engine, expire_on_commit=False)
    make_model(own)
    reviewer = make_user(own, email="rita@example.test", name="Rita")
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "browser-test", "SESSION_COOKIE_SECURE": False, "JOBS_IN_PROCESS": True}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}", "app": app, "session": own, "reviewer": reviewer}
    finally:
        server.shutdown()
        worker.drain(app)
        own.close()
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package; Playwright never downloads a browser here).

    Module-scoped: Playwright's event loop must be gone before other tests push app contexts.
    """
    if not os.path.exists(CHROMIUM):
        if REQUIRE_BROWSER:
            pytest.fail("chromium is not installed (run scripts/setup.sh --test)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def is_error(message: Any) -> bool:
    """A console error, except Chromium's network note on the 409/422 answers the UI expects."""
    return message.type == "error" and not re.search(r"status of (409|422)", message.text)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records console errors and uncaught exceptions."""
    context = browser.new_context()
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda msg: tab.errors.append(msg.text) if is_error(msg) else None)
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def chart_datasets(page: Any, selector: str = "canvas[data-chart]", timeout: float = 5.0) -> int:
    """How many datasets the chart on `selector` draws, waiting for htmx's settle to draw it.

    (Playwright's wait_for_function evaluates a string, which this app's CSP forbids.)
    """
    import time

    script = (
        f"() => {{ const c = window.Chart && Chart.getChart(document.querySelector({selector!r})); "
        "return c ? c.data.datasets.length : 0; }"
    )
    deadline = time.monotonic() + timeout
    while True:
        count = page.evaluate(script)
        if count or time.monotonic() > deadline:
            return int(count)
        page.wait_for_timeout(50)
