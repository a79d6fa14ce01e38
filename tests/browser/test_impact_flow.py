"""An analyst uploads a panel, runs the staggered analysis and reads the event study as it finishes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import chart_datasets
from tests.factories import make_user
from tests.helpers import sign_in, simulated_panel

pytestmark = pytest.mark.browser


def test_upload_analyse_and_read_the_event_study(page, live, tmp_path):
    make_user(live["session"], "analyst", email="ana@example.test", name="Ana")
    good = tmp_path / "panel.csv"
    simulated_panel(np.random.default_rng(21)).to_csv(good, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("unit,period,value,treated\na,1,1,0\na,1,2,1\n")
    sign_in(page, live["url"], "ana@example.test")
    page.goto(live["url"] + "/impact")

    # A malformed file: the problem appears in place, nothing is stored.
    page.fill("#upload-form input[name=name]", "broken")
    page.set_input_files("#upload-form input[name=file]", str(bad))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-problems")
    assert "twice" in page.inner_text("#upload-problems")

    page.fill("#upload-form input[name=name]", "simulated rollout")
    page.set_input_files("#upload-form input[name=file]", str(good))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("text=Cohorts")
    page.click("#analyse-form button[type=submit]")
    # The run page polls until the background analysis is done, then shows the results.
    page.wait_for_selector("#event-table", timeout=30_000)
    assert page.inner_text("#run-status") == "done"
    assert (
        chart_datasets(page, "canvas[data-chart=event]") == 6
    )  # effect, two pointwise limits, two band limits, zero line
    assert "Two-way fixed effects" in page.inner_text("#headline")
    assert page.errors == []
