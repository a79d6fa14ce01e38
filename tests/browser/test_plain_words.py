"""Say it in people's words, in a real browser, over the seeded demo.

Each test reads what a person sees (the rendered text, not the HTML) on every page where the
point applies, so a code, an unreadable number or a sentence that disagrees with its test fails
wherever it appears, not only on the examples the issue names.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from demo import catalog as demo_catalog
from demo.seed import seed as seed_demo
from feedback import migrate
from feedback.models import (
    AnalysisRun,
    BacklogItem,
    DecisionException,
    Experiment,
    ImpactPanel,
    Model,
    ModelVersion,
    Recommendation,
)
from tests.helpers import sign_in

pytestmark = pytest.mark.browser

# snake_case words: codes such as raise_alert, 1k_10k, audit_sample, not_yet.
CODE = re.compile(r"(?<![\w.@/-])[a-z0-9]+(?:_[a-z0-9]+)+(?![\w@/-])")
SCIENTIFIC = re.compile(r"\d[eE][-+]?\d")
NUMBER = re.compile(r"(?<![\w-])[-+]?\d[\d,]*(?:\.\d+)?")


@pytest.fixture(scope="module")
def demo_live(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """The demo (60 days, 80 cases a day: about 15 s) behind a threaded server on loopback."""
    from webapp import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('words') / 'demo.sqlite'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    session = Session(engine, expire_on_commit=False)
    assert seed_demo(session, days=60, per_day=80, progress=lambda _: None)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-test", "SESSION_COOKIE_SECURE": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}", "session": session}
    finally:
        server.shutdown()
        session.close()
        engine.dispose()


def seen(page: Any, path: str, live: dict[str, Any]) -> str:
    """The text a person reads in the page's main content: inputs and audit history left out (they are
    the model's raw inputs and the audit record, shown as stored), and collapsed details as well."""
    page.goto(live["url"] + path)
    assert page.title() and "500" not in page.title(), path
    return visible_text(page)


def visible_text(page: Any) -> str:
    """The visible text of the page's main content, less the model's raw inputs and the audit record."""
    return str(
        page.evaluate(
            """() => {
              const skip = 'details.inputs, #case-history, select, script, code, .mono';
              const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
              const parts = [];
              for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const parent = node.parentElement;
                if (parent.closest(skip) || !parent.checkVisibility()) continue;
                parts.push(node.textContent);
              }
              return parts.join(' ');
            }"""
        )
    )


def analytics_paths(live: dict[str, Any]) -> list[str]:
    """Every page where an analytics figure or a model's code appears, with the ids the demo gave."""
    s = live["session"]
    fraud_case = s.scalars(
        select(Recommendation).where(Recommendation.subject.like("%electronics%")).order_by(Recommendation.id)
    ).first()
    exception = s.scalars(select(DecisionException).order_by(DecisionException.id)).first()
    paths = [
        "/models",
        "/queue",
        "/exceptions",
        "/exceptions/dashboard",
        "/exceptions/dashboard?by=severity",
        "/impact",
        f"/cases/{fraud_case.id}",
        f"/exceptions/{exception.id}",
    ]
    for key in ("claims_triage", "fraud_alert"):
        paths += [f"/models/{key}", f"/models/{key}/breakdown", f"/models/{key}/backlog"]
        paths += [f"/models/{key}/right?by={by}" for by in ("reason_code", "reviewer", "model_version")]
        paths += [f"/models/{key}/breakdown?by=reason_code", f"/models/{key}/breakdown?by=confidence_decile"]
    attributes = {"claims_triage": ("claim_band", "channel", "product"), "fraud_alert": ("merchant_category",)}
    for key, names in attributes.items():
        paths += [f"/models/{key}/breakdown?by=segment.{name}" for name in names]
    paths += [f"/backlog/{i}" for i in s.scalars(select(BacklogItem.id))]
    paths += [f"/impact/experiments/{i}" for i in s.scalars(select(Experiment.id))]
    paths += [f"/impact/panels/{i}" for i in s.scalars(select(ImpactPanel.id))]
    paths += [f"/impact/analyses/{i}" for i in s.scalars(select(AnalysisRun.id))]
    return paths


def test_codes_appear_nowhere_a_person_reads_and_labels_do(page, demo_live):
    sign_in(page, demo_live["url"], "admin@countersign.test", demo_catalog.DEMO_PASSWORD)
    found = {}
    for path in analytics_paths(demo_live):
        codes = sorted(set(CODE.findall(seen(page, path, demo_live))))
        if codes:
            found[path] = codes
    assert found == {}

    # The registered labels, where the codes used to be.
    band = seen(page, "/models/claims_triage/breakdown?by=segment.claim_band", demo_live)
    assert "Override rate by claim band" in band and "£1k to £10k" in band and "segment." not in band
    backlog = seen(page, "/models/claims_triage/backlog", demo_live)
    assert "where claim band is over £10k" in backlog
    panel_id = demo_live["session"].scalar(select(ImpactPanel.id))
    assert "doubly robust" in seen(page, f"/impact/panels/{panel_id}", demo_live)
    # Exception kinds in the chart legend and the table.
    page.goto(demo_live["url"] + "/exceptions/dashboard?by=kind")
    page.wait_for_selector("#resolution-table")
    legend = page.evaluate(
        "() => { const c = Chart.getChart(document.querySelector('canvas[data-chart]'));"
        " return c ? c.data.datasets.map(d => d.label) : []; }"
    )
    assert "Audit sample" in legend and not any(CODE.search(label or "") for label in legend), legend
    # The model's own action labels on a case, and the article that fits the word after it.
    s = demo_live["session"]
    case = s.scalars(select(Recommendation).where(Recommendation.subject.like("%electronics%"))).first()
    text = seen(page, f"/cases/{case.id}", demo_live)
    assert "at an electronics merchant" in text and "at a electronics" not in text
    assert ("Raise an alert" in text or "Dismiss" in text) and "raise_alert" not in text
    assert page.errors == []


def test_a_reviewer_sees_the_model_words_on_the_case_and_in_the_confirmation(page, demo_live):
    fraud = demo_live["session"].scalar(select(Model.id).where(Model.key == "fraud_alert"))
    sign_in(page, demo_live["url"], "reviewer01@countersign.test", demo_catalog.DEMO_PASSWORD)
    page.goto(demo_live["url"] + f"/queue?model={fraud}")
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    text = visible_text(page)
    assert "AI recommends" in text and not CODE.findall(text), CODE.findall(text)
    assert "Merchant category" in text and ("Accept Raise an alert" in text or "Accept Dismiss" in text)
    page.keyboard.press("a")
    page.wait_for_selector("text=Accepted case")
    notice = page.inner_text("#review-panel .confirmation, [role=status]")
    assert re.search(r"Accepted case TXN-\d+ \((Raise an alert|Dismiss)\)\.", notice), notice
    assert page.errors == []


def unreadable(text: str, names: set[str]) -> list[str]:
    """Numbers nobody should have to read: scientific notation, or five or more significant digits.

    Not numbers: `names` (version names such as 2026.1) and money in a case's subject (£441.38).
    """
    bad = [m.group(0) for m in re.finditer(r"\S*" + SCIENTIFIC.pattern + r"\S*", text)]
    for match in NUMBER.finditer(text):
        number = match.group(0)
        if "," in number or "." not in number or number in names or text[max(match.start() - 1, 0)] in "£$€":
            continue  # counts (with separators), years, ids, version names, money
        significant = number.lstrip("+-").replace(".", "").lstrip("0")
        if len(significant) >= 5:
            bad.append(number)
    return bad


def test_numbers_are_formatted_for_reading_on_every_page(page, demo_live):
    sign_in(page, demo_live["url"], "admin@countersign.test", demo_catalog.DEMO_PASSWORD)
    versions = set(demo_live["session"].scalars(select(ModelVersion.version)))
    found = {}
    for path in analytics_paths(demo_live):
        bad = unreadable(seen(page, path, demo_live), versions)
        if bad:
            found[path] = bad[:5]
    assert found == {}
    # Effects carry their unit, and p-values read "< 0.001" rather than 1e-67.
    run = demo_live["session"].scalars(select(AnalysisRun).where(AnalysisRun.kind == "staggered")).one()
    text = seen(page, f"/impact/analyses/{run.id}", demo_live)
    assert re.search(r"Average effect where the AI was switched on\s+[-+][\d.]+ s\b", text), text[:600]
    ab = demo_live["session"].scalars(select(AnalysisRun).where(AnalysisRun.kind == "ab")).one()
    table = page.goto(demo_live["url"] + f"/impact/analyses/{ab.id}") and page.inner_text("#ab-table")
    assert re.search(r"[-+][\d.]+ s \([-+][\d.]+ to [-+][\d.]+ s\)", table) and " points (" in table
    assert page.errors == []


P_IN_TEXT = re.compile(r"p (<|>|=) ([\d.]+)")


def p_of(text: str) -> float:
    """The p-value a sentence states ("p < 0.001" counts as 0.0005)."""
    relation, value = P_IN_TEXT.search(text).groups()
    return float(value) / 2 if relation == "<" else float(value)


def test_each_headline_has_a_sentence_that_agrees_with_its_test(page, demo_live):
    sign_in(page, demo_live["url"], "admin@countersign.test", demo_catalog.DEMO_PASSWORD)
    page.goto(demo_live["url"] + "/models/claims_triage")
    sentence = page.inner_text("#version-test")
    assert re.match(r"v2 is overridden [\d.]+ points (less|more) often than v1 \(95% CI ", sentence), sentence
    assert ("could well be chance" in sentence) == (p_of(sentence) >= 0.05)
    assert page.inner_text("#rate-sentence").startswith("Reviewers overrode ")

    run = demo_live["session"].scalars(select(AnalysisRun).where(AnalysisRun.kind == "staggered")).one()
    page.goto(demo_live["url"] + f"/impact/analyses/{run.id}")
    pretest = page.inner_text("#pretest")
    stated = page.inner_text("#pretest-sentence")
    shown = p_of(page.inner_text("#pretest .value"))
    # The words follow the p-value shown beside them, and no other p-value is visible next to them.
    assert stated.startswith("No evidence against") == (shown >= 0.05), (stated, shown)
    assert stated.startswith("Evidence against") == (shown < 0.05)
    assert all(p_of(m.group(0)) == shown for m in P_IN_TEXT.finditer(pretest)), pretest
    effect = page.inner_text("#effect-sentence")
    assert effect.startswith("Where the AI was switched on, median handling time is ") and "(95% CI " in effect

    page.goto(demo_live["url"] + "/exceptions/dashboard")
    assert page.inner_text("#breach-sentence").startswith("An estimated ")
    item = demo_live["session"].scalar(select(BacklogItem.id))
    page.goto(demo_live["url"] + f"/backlog/{item}")
    assert "verified" in page.inner_text("#verification-sentence")
    assert page.errors == []


def test_ab_results_give_a_verdict_and_an_interval_bar_per_metric(page, demo_live):
    sign_in(page, demo_live["url"], "analyst@countersign.test", demo_catalog.DEMO_PASSWORD)
    run = demo_live["session"].scalars(select(AnalysisRun).where(AnalysisRun.kind == "ab")).one()
    page.goto(demo_live["url"] + f"/impact/analyses/{run.id}")
    rows = page.locator("#ab-table tbody tr")
    assert rows.count() == 3
    lower_is_better = {"handling_seconds": True, "override": True, "correct": False}
    for n in range(rows.count()):
        row = rows.nth(n)
        metric = row.get_attribute("data-metric")
        verdict = row.locator("td.verdict").inner_text().split("(")[0].strip()
        assert verdict in ("better", "worse", "inconclusive"), verdict
        p = float(re.sub(r"[<> ]", "", row.locator("td").nth(7).inner_text()))
        difference = row.locator("td").nth(4).inner_text()
        if p >= 0.05:
            assert verdict == "inconclusive"
        else:
            fell = difference.startswith("-")
            assert verdict == ("better" if fell == lower_is_better[metric] else "worse"), (metric, difference, p)
        # The interval bar: drawn on the server, zero line, interval and estimate.
        bar = row.locator("td.interval-bar svg")
        assert bar.count() == 1 and bar.locator("line").count() == 1 and bar.locator("rect").count() == 1
        assert verdict in bar.get_attribute("aria-label")
    # The demo's A/B test: the AI really makes reviewers faster, and the page says so.
    handling = page.locator("#ab-table tr[data-metric=handling_seconds] td.verdict").inner_text()
    assert handling.startswith("better")
    sentences = page.inner_text("#ab-sentences")
    assert "With the AI shown, handling time is " in sentences and " s lower (95% CI " in sentences
    assert page.errors == []


def table_columns(page: Any, selector: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Header texts, each column's cells, and each row's first cell."""
    headers = [h.strip() for h in page.locator(f"{selector} thead th").all_inner_texts()]
    rows = page.locator(f"{selector} tbody tr")
    cells = [rows.nth(i).locator("th, td").all_inner_texts() for i in range(rows.count())]
    columns = [[row[j].strip() for row in cells if len(row) == len(headers)] for j in range(len(headers))]
    return headers, columns, [row[0] for row in cells]


def test_who_was_right_repeats_no_column(page, demo_live):
    sign_in(page, demo_live["url"], "owner@countersign.test", demo_catalog.DEMO_PASSWORD)
    for by in ("reason_code", "reviewer", "model_version"):
        page.goto(demo_live["url"] + f"/models/claims_triage/right?by={by}")
        headers, columns, keys = table_columns(page, "#right-table")
        assert "human corrected AI" not in headers and "overrode a right AI" not in headers
        overrides = [i for i, key in enumerate(keys) if "accepted" not in key.lower()]
        for a in range(1, len(columns)):
            for b in range(a + 1, len(columns)):
                same = all(columns[a][i] == columns[b][i] for i in overrides)
                assert not same, f"by {by}: '{headers[a]}' repeats '{headers[b]}'"
    assert page.errors == []
