"""The demo's drifting fraud amounts in a real browser: the drift page, its chart and table, the guardrail's alert."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from demo.catalog import DEMO_PASSWORD
from demo.seed import seed
from feedback import migrate
from tests.helpers import sign_in

pytestmark = pytest.mark.browser

# The drift chart's distance line and its table column, as numbers.
CHART_AND_TABLE = """() => {
  const canvas = document.querySelector('canvas[data-chart="drift"]');
  const chart = Chart.getChart(canvas);
  if (!chart) return null;
  const line = chart.data.datasets.find((d) => d.tableColumn === "distance");
  const table = document.querySelector('table[data-chart-table="drift-data"]');
  const cells = Array.from(table.querySelectorAll('td[data-series="distance"]'));
  return { chart: line.data, table: cells.map((td) => (td.dataset.value === "" ? null : Number(td.dataset.value))) };
}"""


@pytest.fixture(scope="module")
def drift_live(tmp_path_factory: Any) -> Iterator[str]:
    """A live server over a five-week demo: fraud amounts drift in its last two weeks."""
    from webapp import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('drift') / 'demo.sqlite'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        seed(session, days=35, per_day=160, progress=lambda _: None)
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "browser-test", "SESSION_COOKIE_SECURE": False, "JOBS_IN_PROCESS": True}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        engine.dispose()


def test_drift_page_names_the_drifted_feature_and_its_chart_matches_its_table(browser: Any, drift_live: str) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, drift_live, "owner@countersign.test", DEMO_PASSWORD)
    page.goto(drift_live + "/models/fraud_alert")
    # The guardrail caught it: an open alert on the model's overview, in the model's words.
    assert "Amount drifted over the last 14 days" in page.locator(".alert").first.inner_text()
    page.click("nav.tabs >> text=Drift")
    page.wait_for_url("**/models/fraud_alert/drift")
    sentence = page.locator("#drift-sentence").inner_text()
    assert sentence.startswith("1 of the 6 things compared moved away from the reference: Amount.")
    row = page.locator("#drift-table tr.drifted")
    assert row.count() == 1 and "Amount" in row.inner_text()
    assert page.locator("h2", has_text="Daily drift of Amount").is_visible()
    numbers = None
    for _ in range(100):  # Chart.js draws after the page loads
        numbers = page.evaluate(CHART_AND_TABLE)
        if numbers:
            break
        page.wait_for_timeout(50)
    assert numbers and len(numbers["chart"]) == 14
    assert numbers["chart"] == numbers["table"]
    # Another feature's chart, through its link: it stays under the threshold most days.
    page.click("#drift-table >> text=Merchant category")
    page.wait_for_load_state()
    assert page.locator("h2", has_text="Daily drift of Merchant category").is_visible()
    # Changing the version reloads the body in place (htmx) and keeps the page working.
    page.select_option("select[name=version]", "2026.1")
    page.wait_for_timeout(300)
    assert page.locator("#drift-body").is_visible()
    assert errors == []
