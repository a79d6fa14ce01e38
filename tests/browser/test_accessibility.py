"""Accessibility in a real browser: axe-core on every main page, each page at 1024 px, focus after a swap.

The walk over the pages also writes full-page screenshots at 1400 and 1024 px into the ignored
folder screenshots/ at the repository root, so anyone can look at the pages after `make test`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from demo import catalog as demo_catalog
from demo.seed import seed as seed_demo
from feedback import migrate
from feedback.models import AnalysisRun, BacklogItem, DecisionException, Experiment, Recommendation
from tests.factories import PASSWORD, make_case
from tests.helpers import sign_in

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "screenshots"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = (1400, 1024)
# The demo's sign-ins (demo/catalog.py); each page is read by the role that uses it.
ROLES = {
    "frontline": "reviewer01@countersign.test",
    "exception_handler": "handler@countersign.test",
    "model_owner": "owner@countersign.test",
    "analyst": "analyst@countersign.test",
    "admin": "admin@countersign.test",
}
# (name, role, path); {placeholders} are ids found in the seeded database.
PAGES = [
    ("login", None, "/login"),
    ("queue", "frontline", "/queue"),
    ("review-case", "frontline", "/review/next"),
    ("review-override", "frontline", "/review/next"),
    ("review-decided", "frontline", "/review/next"),
    ("password", "frontline", "/account/password"),
    ("exceptions", "exception_handler", "/exceptions"),
    ("exception", "exception_handler", "/exceptions/{exception}"),
    ("exceptions-dashboard", "exception_handler", "/exceptions/dashboard"),
    ("models", "model_owner", "/models"),
    ("overview", "model_owner", "/models/claims_triage"),
    ("breakdown", "model_owner", "/models/claims_triage/breakdown"),
    ("who-was-right", "model_owner", "/models/claims_triage/right"),
    ("challengers", "model_owner", "/models/claims_triage/challengers?by=segment.product"),
    ("drill-down", "model_owner", "/models/claims_triage/cases?by=site&cell=Leeds"),
    ("backlog", "model_owner", "/models/claims_triage/backlog"),
    ("backlog-item", "model_owner", "/backlog/{backlog_item}"),
    ("case", "model_owner", "/cases/{case}"),
    ("model-settings", "model_owner", "/admin/models/claims_triage/settings"),
    ("admin-models", "admin", "/admin/models"),
    ("admin-users", "admin", "/admin/users"),
    ("admin-webhooks", "admin", "/admin/webhooks"),
    ("impact", "analyst", "/impact"),
    ("impact-plan", "analyst", "/impact/plan"),
    ("experiment", "analyst", "/impact/experiments/{experiment}"),
    ("analysis-staggered", "analyst", "/impact/analyses/{staggered_run}"),
    ("analysis-ab", "analyst", "/impact/analyses/{ab_run}"),
    ("exports", "analyst", "/exports"),
]
NAMES = [name for name, _, _ in PAGES]

# The violations axe finds, as rule id, impact and target selectors (for the failure message).
AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 6).map(n => n.target.join(' '))}));
}"""
# What sticks out past the viewport's right edge, outside any container that scrolls or clips it.
OVERFLOW = """() => {
  const root = document.documentElement, width = root.clientWidth;
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.classList.length ? '.' + [...el.classList].join('.') : '');
  const wide = [...document.body.querySelectorAll('*')].filter((el) => {
    const box = el.getBoundingClientRect();
    return box.width > 1 && (box.right > width + 1 || box.left < -1) && !clipped(el);
  });
  return {scrollWidth: root.scrollWidth, clientWidth: width, wide: wide.slice(0, 8).map(name)};
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """The demo scenario, seeded once for the module (60 days: it has alerts, a backlog and both
    analyses in about 6 s), behind one live server."""
    from webapp import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('a11y') / 'demo.sqlite'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        seed_demo(session, days=60, per_day=150, progress=lambda _: None)
        ids = {
            "exception": session.scalar(
                select(DecisionException.id).where(DecisionException.status == "open").order_by(DecisionException.id)
            ),
            "backlog_item": session.scalar(select(BacklogItem.id).order_by(BacklogItem.id)),
            "case": session.scalar(
                select(Recommendation.id).where(Recommendation.status == "decided").order_by(Recommendation.id)
            ),
            "experiment": session.scalar(select(Experiment.id).where(Experiment.kind == "ab")),
            "staggered_run": session.scalar(
                select(AnalysisRun.id).where(AnalysisRun.kind == "staggered", AnalysisRun.status == "done")
            ),
            "ab_run": session.scalar(
                select(AnalysisRun.id).where(AnalysisRun.kind == "ab", AnalysisRun.status == "done")
            ),
        }
    assert None not in ids.values(), ids  # the demo must have one of each to look at
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
        server.server_close()
        engine.dispose()


def open_page(page: Any, base: str, name: str, path: str) -> int:
    """Open one page as a person would; the answer's status."""
    if name.startswith("review-"):  # the case a reviewer decides: claimed from the queue
        page.goto(base + "/queue")
        page.click("#start-reviewing")
        page.wait_for_selector("#review-panel[data-case-id][data-ready]")
        if name == "review-override":  # the override form open, with its numbered choices
            page.keyboard.press("o")
            page.wait_for_selector("#override-form:not([hidden])")
        elif name == "review-decided":  # the confirmation, its undo, and the next case
            page.keyboard.press("a")
            page.wait_for_selector("#review-panel .confirmation")
        return 200
    response = page.goto(base + path)
    return response.status if response else 0


@pytest.fixture(scope="module")
def walk(browser: Any, site: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Every page at each width, once: axe's violations, what overflows, a screenshot.

    axe-core is served to the page as if it came from the app's own origin (a Playwright route
    that only this test's browser sees), so the app's strict CSP (script-src 'self') stays on
    and the app itself never serves axe-core.
    """
    assert AXE.exists(), "axe-core is missing: run scripts/setup.sh --test (npm ci installs the devDependencies)"
    SCREENSHOTS.mkdir(exist_ok=True)
    base = site["url"]
    axe_url = base + "/__axe-core-for-tests.js"
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 768})
        context.route(axe_url, lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        signed_in_as = None
        for name, role, path in PAGES:
            if role != signed_in_as:
                context.clear_cookies()
                if role is not None:
                    sign_in(page, base, ROLES[role], demo_catalog.DEMO_PASSWORD)
                signed_in_as = role
            status = open_page(page, base, name, path.format(**site["ids"]))
            page.add_script_tag(url=axe_url)
            results[name, width] = {
                "status": status,
                "violations": page.evaluate(AXE_RUN, WCAG_TAGS),
                "overflow": page.evaluate(OVERFLOW),
                "errors": list(errors),
            }
            errors.clear()
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        context.close()
    return results


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']}: {', '.join(v['targets'])}" for v in violations)


@pytest.mark.parametrize("name", NAMES)
def test_axe_finds_no_serious_or_critical_violation(walk: dict[tuple[str, int], dict[str, Any]], name: str) -> None:
    problems = []
    for width in WIDTHS:
        seen = walk[name, width]
        assert seen["status"] == 200, (name, width, seen["status"])
        assert seen["errors"] == [], (name, width, seen["errors"])
        bad = [v for v in seen["violations"] if v["impact"] in ("serious", "critical")]
        if bad:
            problems.append(f"{name} at {width} px (WCAG 2.2 AA):\n{describe(bad)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_page_fits_1024_px(walk: dict[tuple[str, int], dict[str, Any]], name: str) -> None:
    seen = walk[name, 1024]["overflow"]
    assert seen["scrollWidth"] <= seen["clientWidth"] + 1 and seen["wide"] == [], f"{name} at 1024 px: {seen}"


def test_screenshots_of_every_page_at_both_widths(walk: dict[tuple[str, int], dict[str, Any]]) -> None:
    for name in NAMES:
        for width in WIDTHS:
            shot = SCREENSHOTS / f"{name}-{width}.png"
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot


def test_focus_moves_to_the_new_case_after_a_decision(page: Any, live: dict[str, Any]) -> None:
    for n in range(1, 4):
        make_case(live["session"], n)
    page.goto(live["url"] + "/login")
    page.fill("input[name=email]", live["reviewer"].email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/queue"))
    page.click("#start-reviewing")
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    first = page.get_attribute("#review-panel", "data-case-id")

    page.keyboard.press("a")
    page.wait_for_selector("text=Accepted case EXT-1 (pay).")
    second = page.get_attribute("#review-panel", "data-case-id")
    assert second != first
    focused = focus_in_panel(page)
    assert focused["inPanel"], focused
    assert focused["text"] == page.inner_text("#review-panel .case-head h1"), focused

    # The keys still work from there: the next decision goes to the case now in focus.
    page.wait_for_selector("#review-panel[data-ready]")
    page.keyboard.press("a")
    page.wait_for_selector("text=Accepted case EXT-2 (pay).")
    focused = focus_in_panel(page)
    assert focused["inPanel"] and focused["text"] == page.inner_text("#review-panel .case-head h1"), focused
    assert page.errors == []


def focus_in_panel(page: Any, timeout_ms: int = 5000) -> dict[str, Any]:
    """Where focus is, waiting a little for it to reach the review panel."""
    script = (
        "() => { const el = document.activeElement, panel = document.getElementById('review-panel');"
        " return {inPanel: !!panel && el !== document.body && panel.contains(el), tag: el.tagName,"
        " text: el.innerText.trim().slice(0, 80)}; }"
    )
    for _ in range(timeout_ms // 50):
        focused = page.evaluate(script)
        if focused["inPanel"]:
            break
        page.wait_for_timeout(50)
    return focused


def test_the_app_serves_no_test_tool_and_keeps_its_csp(site: dict[str, Any]) -> None:
    """axe-core is a devDependency for these tests only: the app never serves it, and the
    walk above ran with the app's own Content-Security-Policy in force."""
    with pytest.raises(HTTPError) as refused:
        urlopen(site["url"] + "/static/vendor/axe.min.js")
    refused.value.close()
    assert refused.value.code == 404
    with urlopen(site["url"] + "/login") as answer:
        assert "script-src 'self';" in answer.headers["Content-Security-Policy"]
