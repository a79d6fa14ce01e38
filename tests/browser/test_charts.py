"""Every chart, at two widths: its caption collides with nothing, its legend has no duplicates,
its numbers are in a table, and the Kaplan–Meier curves are named in words on a readable axis."""

from __future__ import annotations

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
from feedback.models import EXCEPTION_KINDS, AnalysisRun, BacklogItem, ImpactPanel

pytestmark = pytest.mark.browser

WIDTHS = (1400, 1024)

# For each caption: the visible elements (neither its ancestors nor inside it) its box overlaps.
COLLISIONS = """() => {
  const hits = [];
  const overlap = (a, b) =>
    a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  document.querySelectorAll("figure.chart figcaption").forEach((cap) => {
    const box = cap.getBoundingClientRect();
    for (const el of document.body.querySelectorAll("*")) {
      if (el === cap || el.contains(cap) || cap.contains(el)) continue;
      const style = getComputedStyle(el);
      if (style.display === "none" || style.visibility === "hidden") continue;
      const other = el.getBoundingClientRect();
      if (!other.width || !other.height) continue;
      const name = el.tagName + "#" + el.id + "." + el.className;
      if (overlap(box, other)) hits.push(cap.textContent.trim().slice(0, 40) + " overlaps " + name);
    }
  });
  return hits;
}"""

# Each drawn chart: its legend texts, and each dataset's numbers next to the same column of its table.
CHARTS = """() => Array.from(document.querySelectorAll("canvas[data-chart]")).map((canvas) => {
  const chart = Chart.getChart(canvas);
  if (!chart) return { kind: canvas.dataset.chart, drawn: false };
  const table = document.querySelector('table[data-chart-table="' + canvas.dataset.chartSource + '"]');
  const num = (v) => (v === "" || v === null || v === undefined ? null : Number(v));
  return {
    kind: canvas.dataset.chart, drawn: true,
    legend: chart.legend.legendItems.map((item) => item.text),
    table: !!table,
    datasets: chart.data.datasets.map((d) => ({
      label: d.label,
      chart: d.data.map((p) => (p !== null && typeof p === "object" ? p.y : num(p))),
      table: table ? Array.from(table.querySelectorAll("td[data-series]"))
        .filter((td) => td.dataset.series === d.tableColumn).map((td) => num(td.dataset.value)) : [],
    })),
    x: { type: chart.scales.x.type, max: chart.scales.x.max,
         dataMax: Math.max(...chart.data.datasets.flatMap(
           (d) => d.data.map((p) => (p && typeof p === "object" ? p.x : 0)))) },
    caption: canvas.closest("figure").querySelector("figcaption").textContent,
  };
})"""


@pytest.fixture(scope="module")
def demo_live(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """A live server over a small demo (four weeks): every chart of the product has data."""
    from webapp import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('charts') / 'demo.sqlite'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        seed_demo(session, days=28, per_day=40, progress=lambda _: None)
        ids = {
            "run": session.scalar(select(AnalysisRun.id).where(AnalysisRun.kind == "staggered")),
            "panel": session.scalar(select(ImpactPanel.id)),
            "item": session.scalar(select(BacklogItem.id)),
        }
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "browser-test", "SESSION_COOKIE_SECURE": False, "JOBS_IN_PROCESS": True}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}", "ids": ids}
    finally:
        server.shutdown()
        engine.dispose()


def chart_pages(ids: dict[str, int]) -> list[tuple[str, set[str]]]:
    """Every page with a chart, and the charts it must draw."""
    assert all(ids.values()), ids
    return [
        ("/models", {"trend"}),
        ("/models/claims_triage", {"pchart"}),
        ("/models/claims_triage/challengers?by=segment.product", {"challenger"}),
        (f"/impact/panels/{ids['panel']}", {"panel"}),
        (f"/impact/analyses/{ids['run']}", {"event"}),
        (f"/backlog/{ids['item']}", {"pattern"}),
        ("/exceptions/dashboard?by=kind", {"survival"}),
        ("/exceptions/dashboard?by=severity", {"survival"}),
    ]


def signed_in(browser: Any, live: dict[str, Any], width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.set_default_timeout(10_000)
    page.goto(live["url"] + "/login")
    page.fill("input[name=email]", "admin@countersign.test")
    page.fill("input[name=password]", demo_catalog.DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def drawn_charts(page: Any) -> list[dict[str, Any]]:
    """The charts on the page once Chart.js has drawn them all (the CSP forbids string waits)."""
    for _ in range(100):
        charts = page.evaluate(CHARTS)
        if charts and all(c["drawn"] for c in charts):
            return list(charts)
        page.wait_for_timeout(50)
    raise AssertionError(f"charts not drawn: {charts}")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_chart_has_a_clear_caption_a_legend_without_duplicates_and_its_numbers_in_a_table(
    browser: Any, demo_live: dict[str, Any], width: int
) -> None:
    page = signed_in(browser, demo_live, width)
    problems: list[str] = []  # every page and every rule, so one run names all that is wrong
    for path, kinds in chart_pages(demo_live["ids"]):
        page.goto(demo_live["url"] + path)
        charts = drawn_charts(page)
        assert {c["kind"] for c in charts} == kinds, path
        problems += [f"{path} at {width}px: {hit}" for hit in page.evaluate(COLLISIONS)]
        for chart in charts:
            texts = [t.strip().lower() for t in chart["legend"]]
            if not texts or len(texts) != len(set(texts)):
                problems.append(f"{path}: legend {chart['legend']}")
            if not chart["table"]:
                problems.append(f"{path}: no table with the {chart['kind']} chart's numbers")
                continue
            for dataset in chart["datasets"]:
                if dataset["label"] == "No effect":  # the zero line is a reference, not data
                    continue
                if dataset["table"] != pytest.approx(dataset["chart"], nan_ok=True):
                    problems.append(f"{path}: {dataset['label']} differs from its table column")
    assert not problems, "\n".join(problems)
    assert page.errors == []
    page.context.close()


def test_survival_curves_are_named_in_words_on_a_readable_axis(browser: Any, demo_live: dict[str, Any]) -> None:
    page = signed_in(browser, demo_live, 1400)
    page.goto(demo_live["url"] + "/exceptions/dashboard?by=kind")
    (chart,) = drawn_charts(page)
    labels = chart["legend"]
    assert "Audit sample" in labels
    assert not set(labels) & set(EXCEPTION_KINDS) and all("_" not in label for label in labels), labels
    axis = chart["x"]
    if axis["type"] != "logarithmic":
        # A clipped axis: it stops short of the data, and the caption says where.
        assert axis["max"] < axis["dataMax"], axis
        assert f"stops at {axis['max']:g} h" in chart["caption"], chart["caption"]
    page.context.close()


# Press a legend entry as a click would, and say which datasets are then hidden.
PRESS_LEGEND = """(text) => {
  const chart = Chart.getChart(document.querySelector("canvas[data-chart=event]"));
  const item = chart.legend.legendItems.find((i) => i.text === text);
  chart.options.plugins.legend.onClick(null, item, chart.legend);
  return chart.data.datasets.filter((d, i) => !chart.isDatasetVisible(i)).map((d) => d.tableColumn);
}"""


def test_a_band_listed_once_hides_and_shows_both_of_its_edges(browser: Any, demo_live: dict[str, Any]) -> None:
    page = signed_in(browser, demo_live, 1400)
    page.goto(demo_live["url"] + f"/impact/analyses/{demo_live['ids']['run']}")
    drawn_charts(page)
    assert page.evaluate(PRESS_LEGEND, "95% uniform band") == ["Uniform band, low", "Uniform band, high"]
    assert page.evaluate(PRESS_LEGEND, "95% uniform band") == []
    page.context.close()
