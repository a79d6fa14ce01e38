"""Text from model services and reviewers is shown as text: markup in it never runs or renders."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from feedback.models import DecisionException
from tests.factories import make_case, make_user
from tests.helpers import sign_in

pytestmark = pytest.mark.browser

IMG = '<img src="x" onerror="window.pwned = 1">'
SCRIPT = "<script>window.pwned = 2</script>"
SVG = '<svg onload="window.pwned = 3"></svg>"><b>bold</b>'


def assert_inert(page, *texts: str) -> None:
    """The markup is on the page as visible text, and none of it became elements or ran."""
    body = page.inner_text("body")
    for text in texts:
        assert text in body
    assert page.evaluate("() => window.pwned") is None
    planted = page.evaluate(
        "() => [...document.querySelectorAll('img[src=x], [onerror], [onload], main script, main b')]"
        ".map(e => e.outerHTML)"
    )
    assert planted == []
    assert page.errors == []


def test_markup_in_explanations_subjects_and_notes_is_inert(page, live):
    session = live["session"]
    explanation = {
        "summary": f"Looks routine {IMG}",
        "factors": [{"name": SCRIPT, "value": SVG, "contribution": 0.4}],
    }
    case = make_case(session, 1, subject=f"Claim {SVG}", explanation=explanation)
    make_user(session, "admin", email="ada@example.test")

    sign_in(page, live["url"], "ada@example.test")  # an admin lands on the model registry
    page.goto(f"{live['url']}/review/{case.id}")
    page.click("#claim-button")  # an address typed in claims nothing by itself
    page.wait_for_selector("#review-panel[data-case-id][data-ready]")
    assert_inert(page, f"Looks routine {IMG}", SCRIPT, SVG)

    page.keyboard.press("e")
    page.keyboard.type(f"See {IMG} and {SCRIPT}")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Escalated case EXT-1.")
    session.rollback()
    exception_id = session.scalar(select(DecisionException.id))
    page.goto(f"{live['url']}/exceptions/{exception_id}")
    assert_inert(page, f"See {IMG} and {SCRIPT}")
