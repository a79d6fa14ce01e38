"""Reviewer identity is personal data: only admins (and the person themself) see who someone is."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from feedback import permissions
from feedback.decision_exceptions import services as decision_exceptions
from feedback.impact import panels as impact_panels
from feedback.models import ROLES, Decision, DecisionException, User
from feedback.review import claims, decisions
from tests.factories import login, make_case, make_model, make_user, token_for
from tests.helpers import QUERY, url_for_rule

ADMIN = "admin"


def test_pseudonyms_are_stable_distinct_and_keyed(app: Flask):
    names = {permissions.pseudonym(i) for i in range(1, 2001)}
    assert len(names) == 2000  # no two of 2,000 people share one
    assert permissions.pseudonym(17) == permissions.pseudonym(17)
    assert re.fullmatch(r"Reviewer [A-Z2-7]{6}", permissions.pseudonym(17)) and "17" not in permissions.pseudonym(17)
    before = permissions.pseudonym(17)
    permissions.configure_pseudonyms("another secret")
    try:
        assert permissions.pseudonym(17) != before  # without the key nobody can compute them from ids
    finally:
        permissions.configure_pseudonyms(app.config["SECRET_KEY"])


@pytest.fixture
def decided(app: Flask, session):
    """Rita accepted case 1 and escalated case 2 (assigned to Hana); Rolf holds case 3."""
    make_model(session)
    rita = make_user(session, email="rita@example.test", name="Rita Reviewer")
    rolf = make_user(session, email="rolf@example.test", name="Rolf Reviewer")
    hana = make_user(session, "exception_handler", email="hana@example.test", name="Hana Handler")
    ids = [make_case(session, n).id for n in (1, 2, 3)]
    decisions.record_decision(session, rita, recommendation_id=ids[0], action="accept")
    decisions.record_decision(session, rita, recommendation_id=ids[1], action="escalate", note="unclear")
    claims.claim_case(session, rolf, recommendation_id=ids[2])
    exc_id = session.scalar(select(DecisionException.id))
    decision_exceptions.assign_exception(session, hana, exception_id=exc_id, assignee_id=hana.id)
    return {"rita": rita, "rolf": rolf, "hana": hana, "ids": ids, "exception": exc_id}


@pytest.mark.parametrize("role", ROLES)
def test_the_recommendation_api_names_the_reviewer_only_to_admins(app: Flask, session, decided, role):
    client = app.test_client()
    headers = token_for(app, session, make_user(session, role))
    decided_case = client.get(f"/api/v1/recommendations/{decided['ids'][0]}", headers=headers)
    held_case = client.get(f"/api/v1/recommendations/{decided['ids'][2]}", headers=headers)
    assert decided_case.status_code == held_case.status_code == 200
    if role == ADMIN:
        assert decided_case.json["decision"]["reviewer"] == "rita@example.test"
        assert held_case.json["claimed_by"] == "rolf@example.test"
    else:
        assert decided_case.json["decision"]["reviewer"] == permissions.pseudonym(decided["rita"].id)
        assert held_case.json["claimed_by"] == permissions.pseudonym(decided["rolf"].id)
        assert "@example.test" not in decided_case.text + held_case.text


def test_a_reviewer_sees_their_own_identity(app: Flask, session, decided):
    headers = token_for(app, session, decided["rita"])
    body = app.test_client().get(f"/api/v1/recommendations/{decided['ids'][0]}", headers=headers).json
    assert body["decision"]["reviewer"] == "rita@example.test"
    client = app.test_client()
    login(client, decided["rita"])
    assert "Decided by Rita Reviewer" in client.get(f"/review/{decided['ids'][0]}").text


def test_pages_show_colleagues_by_pseudonym_and_admins_by_name(app: Flask, session, decided):
    rita, rolf = permissions.pseudonym(decided["rita"].id), permissions.pseudonym(decided["rolf"].id)
    colleague, admin = app.test_client(), app.test_client()
    login(colleague, make_user(session, name="Otto"))
    login(admin, make_user(session, "admin"))
    page = colleague.get(f"/review/{decided['ids'][0]}").text
    assert f"Decided by {rita}" in page and "Rita" not in page
    queue = colleague.get("/queue").text
    assert f"{rolf} reviewing" in queue and "Rolf" not in queue
    assert "Decided by Rita Reviewer" in admin.get(f"/review/{decided['ids'][0]}").text
    assert "Rolf Reviewer reviewing" in admin.get("/queue").text


def test_exception_handlers_see_handlers_by_name_and_reviewers_by_pseudonym(app: Flask, session, decided):
    rita = permissions.pseudonym(decided["rita"].id)
    handler = app.test_client()
    login(handler, make_user(session, "exception_handler", name="Xavier"))
    detail = handler.get(f"/exceptions/{decided['exception']}").text
    # Who escalated is a reviewer: a pseudonym. Who holds it is a colleague to hand work to: a name.
    assert f"by {rita}" in detail and "Rita" not in detail
    assert "Assigned to <strong>Hana Handler</strong>" in detail and ">Hana Handler</option>" in detail
    assert "Hana Handler" in handler.get("/exceptions").text
    api = app.test_client().get("/api/v1/exceptions", headers=token_for(app, session, decided["hana"])).json
    assert api["items"][0]["assignee"] == "hana@example.test"


def test_breakdowns_by_reviewer_use_pseudonyms_in_pages_csv_api_and_drill_down(app: Flask, session, decided):
    rita = permissions.pseudonym(decided["rita"].id)
    analyst, admin = app.test_client(), app.test_client()
    login(analyst, make_user(session, "analyst"))
    login(admin, make_user(session, "admin"))
    for url in (
        "/models/claims/breakdown?by=reviewer",
        "/models/claims/breakdown?by=reviewer&format=csv",
        "/models/claims/right?by=reviewer",
        "/models/claims/right?format=csv&table=reviewers",
    ):
        seen = analyst.get(url).text
        assert rita in seen and "Rita" not in seen, url
        assert "Rita Reviewer" in admin.get(url).text, url
    token = token_for(app, session, make_user(session, "analyst"))
    api = app.test_client().get("/api/v1/analytics/overrides?model=claims&by=reviewer", headers=token)
    assert [r["key"] for r in api.json["rows"]] == [rita]
    drilled = analyst.get("/models/claims/cases", query_string={"by": "reviewer", "cell": rita, "all": "1"})
    assert drilled.status_code == 200 and "EXT-1" in drilled.text and "Rita" not in drilled.text
    assert "EXT-1" not in analyst.get("/models/claims/cases?by=reviewer&cell=Rita+Reviewer&all=1").text
    assert "EXT-1" in admin.get("/models/claims/cases?by=reviewer&cell=Rita+Reviewer&all=1").text


def test_reviewer_panels_are_built_with_pseudonyms(app: Flask, session, decided):
    """Panels are stored and read by analysts and model owners: their units never carry a name."""
    model_id = session.scalar(select(Decision.model_id))
    frame = impact_panels.platform_frame(session, model_id, "site_reviewer", "day")
    assert set(frame["unit"]) == {f"Leeds · {permissions.pseudonym(decided['rita'].id)}"}


def test_no_get_route_shows_a_reviewer_to_anyone_but_admins_and_themself(app: Flask, session, world):
    """Every GET route of the app, as every role: the frontline reviewer's name and e-mail never leak."""
    reviewer = session.scalar(select(User).where(User.role == "frontline"))
    # Rita also holds the open case, so the claimer shows wherever a claim does.
    claims.claim_case(session, reviewer, recommendation_id=world["ids"]["recommendation_id"])
    decided_id = session.scalar(select(Decision.recommendation_id).where(Decision.action == "accept"))
    secrets_ = [reviewer.email, reviewer.name]
    session.rollback()
    extra = [
        f"/api/v1/recommendations/{decided_id}",
        f"/review/{decided_id}",
        "/models/claims/breakdown?by=reviewer",
        "/models/claims/breakdown?by=reviewer&format=csv",
        "/models/claims/right?by=reviewer",
        "/models/claims/right?format=csv&table=reviewers",
        "/api/v1/analytics/overrides?model=claims&by=reviewer",
        "/api/v1/analytics/accuracy?model=claims&by=reviewer",
    ]
    urls = [
        url_for_rule(r.rule, world["ids"]) + QUERY.get(r.endpoint, "")
        for r in app.url_map.iter_rules()
        if "GET" in r.methods and r.endpoint not in ("static", "metrics", "auth.logout")
    ] + extra
    leaks = []
    for role in ROLES:
        if role in (ADMIN, "frontline"):  # admins see identities; the only frontline user is the reviewer
            continue
        for url in urls:
            headers = world["tokens"][role] if url.startswith("/api/") else {}
            with world["clients"][role].get(url, headers=headers) as response:
                body = response.get_data(as_text=True)
            leaks += [f"{role} sees {s!r} at {url}" for s in secrets_ if s in body]
    assert leaks == []
    admin_view = world["clients"][ADMIN].get(f"/review/{decided_id}").text
    assert reviewer.name in admin_view  # the check above could fail: the name is on the page for an admin
