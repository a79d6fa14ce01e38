"""Drill-downs: every case behind a number, counted and paged with a keyset, each opening a read-only case view."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from feedback.db import utcnow
from feedback.models import BacklogItem, Decision, ModelVersion, Recommendation
from feedback.outcomes import services as outcomes
from feedback.overrides import rollup
from feedback.review import decisions, ingest
from feedback.schemas import OutcomeIn, RecommendationIn
from tests.factories import TEST_ACTOR, login, make_model, make_owner, make_user, payload
from tests.helpers import statements

OVERRIDES = 230


@pytest.fixture
def world(session):
    """230 overrides at Leeds (many sharing a decision time, so the keyset needs its tie-break) and 5 accepts."""
    make_model(session)
    reviewer = make_user(session, name="Rita Reviewer")
    items = [RecommendationIn.model_validate(payload(n, site="Leeds")) for n in range(OVERRIDES + 5)]
    ingest.ingest_recommendations(session, TEST_ACTOR, items=items)
    recs = session.scalars(select(Recommendation).order_by(Recommendation.id)).all()
    now = utcnow()
    version_id = session.scalar(select(ModelVersion.id))
    # Decided straight into the table (only the first case goes through the service, for its audit
    # history); the daily counts are then rebuilt from the decisions.
    decisions.record_decision(
        session,
        reviewer,
        recommendation_id=recs[0].id,
        action="override",
        final_action="deny",
        reason_code="missing_context",
        note="invoice missing",
    )
    for n, rec in enumerate(recs[1:], start=1):
        decided = now - timedelta(minutes=n // 3)
        session.add(
            Decision(
                recommendation_id=rec.id,
                model_id=rec.model_id,
                model_version_id=version_id,
                reviewer_id=reviewer.id,
                action="override" if n < OVERRIDES else "accept",
                final_action="deny" if n < OVERRIDES else "pay",
                reason_code="missing_context" if n < OVERRIDES else None,
                opened_at=decided - timedelta(seconds=30),
                decided_at=decided,
                ai_shown=True,
            )
        )
    session.execute(update(Recommendation).values(status="decided"))
    session.flush()
    rollup.rebuild(session)
    session.commit()
    outcome = {"recommendation_id": recs[0].id, "outcome": "pay", "observed_at": now.isoformat(), "source": "ledger"}
    outcomes.record_outcomes(session, TEST_ACTOR, items=[OutcomeIn.model_validate(outcome)])
    return {"first": recs[0], "reviewer": reviewer, "version_id": version_id}


def walk(client, url):
    """Follow next-page links from `url`: each page's count line and case links."""
    pages = []
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        count = re.search(r'class="page-count"[^>]*>([^<]*)<', page.text).group(1)
        table = page.text[page.text.index('id="cases-table"') :]
        ids = re.findall(r'<a href="/cases/(\d+)">', table)
        pages.append((count, ids))
        found = re.search(r'class="next-page" href="([^"]+)"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    return pages


def expected_order(session):
    """Case ids of the overrides, newest decision first (ties: newer decision first)."""
    rows = session.execute(
        select(Decision.recommendation_id)
        .where(Decision.action == "override")
        .order_by(Decision.decided_at.desc(), Decision.id.desc())
    )
    return [str(r) for (r,) in rows]


def test_breakdown_cases_are_counted_paged_and_linked(app, world, session, client):
    login(client, make_owner(session))
    # A page of 100 cases takes a few queries, not one per case (user, model, window, count, rows...).
    assert statements(app, client, "/models/claims/cases?by=site&cell=Leeds") <= 10
    pages = walk(client, "/models/claims/cases?by=site&cell=Leeds")
    assert [count for count, _ in pages] == [
        "100 of 230, newest decision first",
        "Cases 101–200 of 230, newest decision first",
        "Cases 201–230 of 230, newest decision first",
    ]
    assert [len(ids) for _, ids in pages] == [100, 100, 30]
    assert [i for _, ids in pages for i in ids] == expected_order(session)
    everything = walk(client, "/models/claims/cases?by=site&cell=Leeds&all=1")
    assert everything[0][0] == "100 of 235, newest decision first" and len(everything) == 3
    bad = client.get("/models/claims/cases?by=site&cell=Leeds&after=abc")
    assert bad.status_code == 422 and "after" in bad.text
    gone = client.get("/models/claims/cases?by=site&cell=Leeds&after=999999")
    assert gone.status_code == 422 and "names no decision" in gone.text


def test_backlog_item_cases_are_counted_paged_and_linked(world, session, client):
    item = BacklogItem(
        model_id=world["first"].model_id,
        model_version_id=world["version_id"],
        pattern_key="site=Leeds",
        conditions=[{"dim": "site", "kind": "category", "value": "Leeds"}],
        title="v1 is overridden more at Leeds",
        cases=235,
        overrides=230,
        rate=0.98,
        rate_low=0.95,
        rate_high=0.99,
        baseline=0.1,
        excess=200,
        q_value=0.01,
        wrong_share=0.5,
        priority=2.0,
    )
    session.add(item)
    session.commit()
    login(client, make_user(session, "analyst"))
    pages = walk(client, f"/backlog/{item.id}")
    assert [count for count, _ in pages][0] == "100 of 230, newest decision first"
    assert [i for _, ids in pages for i in ids] == expected_order(session)


def test_case_view_is_read_only_and_shows_reviewers_per_the_privacy_rule(world, session, client):
    first = world["first"]
    login(client, make_user(session, "analyst"))
    page = client.get(f"/cases/{first.id}")
    assert page.status_code == 200
    text = page.text
    for shown in ("EXT-0", "AI recommends", "Routine claim", "override → Deny", "Missing context", "invoice missing"):
        assert shown in text, shown
    assert "What happened" in text and "ledger" in text and "the AI was <strong>right</strong>" in text
    history = text[text.index('id="case-history"') :]
    assert "decision.override" in history and "outcome.recorded" in history
    # Reviewers are pseudonyms for everyone but admins: in the decision and in the history.
    assert "Rita Reviewer" not in text and world["reviewer"].email not in text
    assert re.search(r"Reviewer [A-Z2-7]{6}", history)
    admin = client.application.test_client()
    login(admin, make_user(session, "admin"))
    assert "Rita Reviewer" in admin.get(f"/cases/{first.id}").text
    frontline = client.application.test_client()
    login(frontline, make_user(session, "frontline"))
    assert frontline.get(f"/cases/{first.id}").status_code == 403
    # Opening it claimed nothing.
    session.expire_all()
    assert session.get(Recommendation, first.id).claimed_by_id is None
