"""Queue and review screens, as full pages and as htmx fragments."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from feedback import permissions
from feedback.models import Decision, Recommendation
from tests.factories import PASSWORD, login, make_case, make_model, make_user, shown_token


@pytest.fixture
def reviewer(session, client, htmx_client):
    """A signed-in reviewer (on both clients) and three open cases."""
    make_model(session)
    for n in (1, 2, 3):
        make_case(session, n)
    user = make_user(session, name="Rita")
    login(client, user)
    login(htmx_client, user)
    return user


def case_id(html: str) -> int:
    """The id of the case shown in a review panel."""
    return int(re.search(r'data-case-id="(\d+)"', html).group(1))


def test_pages_need_sign_in(client, htmx_client):
    response = client.get("/queue")
    assert response.status_code == 302 and response.location.startswith("/login?next=")
    fragment = htmx_client.get("/queue")
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith("/login")


def test_wrong_password_is_refused(session, client):
    user = make_user(session)
    response = client.post("/login", data={"email": user.email, "password": "nope nope nope"})
    assert response.status_code == 401 and "Wrong email or password" in response.text
    assert client.get("/queue").status_code == 302


def test_queue_page_and_fragment(reviewer, client, htmx_client):
    page = client.get("/queue")
    assert page.status_code == 200 and "<html" in page.text
    assert "3</strong> open" in page.text and "EXT-1" in page.text
    assert page.headers["Vary"] and "HX-Request" in page.headers["Vary"]
    fragment = htmx_client.get("/queue?site=Bristol")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="queue-table">')
    assert "0</strong> open" in fragment.text


def test_open_case_claims_it_and_others_see_who(reviewer, session, client, app):
    page = client.post("/review/next", follow_redirects=True)
    assert page.status_code == 200
    rec_id = case_id(page.text)
    assert "AI recommends" in page.text and "Routine claim" in page.text
    assert "You reviewing" in client.get("/queue").text
    other = app.test_client()
    login(other, make_user(session, name="Otto"))
    seen = other.get(f"/review/{rec_id}")
    # A fellow reviewer sees Rita's pseudonym, never her name.
    rita = permissions.pseudonym(reviewer.id)
    assert seen.status_code == 200 and f"{rita} is working on case" in seen.text and "Rita" not in seen.text
    assert "data-case-id" not in seen.text  # no decision controls for a case someone else holds
    queue = other.get("/queue").text
    assert f"{rita} reviewing" in queue and "Rita" not in queue


def test_accept_swaps_in_next_case_with_confirmation(reviewer, client, htmx_client, session):
    page = client.post("/review/next", follow_redirects=True).text
    rec_id = case_id(page)
    response = htmx_client.post(f"/review/{rec_id}/decision", data={"action": "accept", "shown": shown_token(page)})
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="review-panel"' in response.text
    assert "Accepted case EXT-1 (Pay)." in response.text  # the action in words
    next_id = case_id(response.text)
    assert next_id != rec_id and response.headers["HX-Push-Url"].endswith(f"/review/{next_id}")
    assert session.scalar(select(func.count()).select_from(Decision)) == 1


def test_invalid_override_rerenders_panel_with_409(reviewer, client, htmx_client):
    page = client.post("/review/next", follow_redirects=True).text
    rec_id = case_id(page)
    response = htmx_client.post(
        f"/review/{rec_id}/decision", data={"action": "override", "final_action": "deny", "shown": shown_token(page)}
    )
    assert response.status_code == 409  # the AI was shown on this case, so overriding it needs a reason
    assert "an override needs a reason code" in response.text
    assert case_id(response.text) == rec_id
    assert re.search(r'id="override-form"[^>]*class="panel" >', response.text)  # the form stays open


def test_losing_a_race_gives_a_clear_409(reviewer, client, htmx_client, session):
    page = client.post("/review/next", follow_redirects=True).text
    rec_id, shown = case_id(page), shown_token(page)
    htmx_client.post(f"/review/{rec_id}/decision", data={"action": "accept", "shown": shown})
    again = htmx_client.post(f"/review/{rec_id}/decision", data={"action": "escalate", "note": "x", "shown": shown})
    assert again.status_code == 409
    assert "Your decision was not saved" in again.text and "already been decided" in again.text
    assert "Next case" in again.text


def test_non_htmx_decision_redirects_to_next_case(reviewer, client):
    page = client.post("/review/next", follow_redirects=True).text
    rec_id = case_id(page)
    response = client.post(
        f"/review/{rec_id}/decision", data={"action": "escalate", "note": "needs a senior", "shown": shown_token(page)}
    )
    assert response.status_code == 302 and re.match(r"^/review/\d+$", response.location)


def test_release_returns_case_to_queue(reviewer, client, session):
    rec_id = case_id(client.post("/review/next", follow_redirects=True).text)
    assert client.post(f"/review/{rec_id}/release").status_code == 302
    assert "You reviewing" not in client.get("/queue").text


def test_explanation_text_is_escaped(session, client):
    make_model(session)
    make_case(
        session,
        9,
        explanation={
            "summary": "<script>alert(1)</script>",
            "factors": [{"name": "<img src=x onerror=alert(2)>", "value": "<b>v</b>", "contribution": 0.4}],
        },
    )
    login(client, make_user(session))
    page = client.post("/review/next", follow_redirects=True).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<b>v</b>" not in page


def test_roles_without_review_rights_get_403(session, client):
    login(client, make_user(session, "analyst"))
    assert client.get("/queue").status_code == 403
    assert client.get("/review/next").status_code == 403


def test_security_headers(reviewer, client):
    response = client.get("/queue")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_csrf_is_enforced_on_forms_and_htmx(app, session):
    app.config["WTF_CSRF_ENABLED"] = True
    make_model(session)
    rec = make_case(session)
    user = make_user(session)
    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/login", data={"email": user.email, "password": "correct horse battery"}).status_code == 400
    assert (
        client.post(
            "/login", data={"email": user.email, "password": "correct horse battery", "csrf_token": token}
        ).status_code
        == 302
    )
    body = client.get(f"/review/{rec.id}").text
    header_token = re.search(r'"X-CSRFToken": "([^"]+)"', body).group(1)
    client.post(f"/review/{rec.id}", headers={"X-CSRFToken": header_token})  # claim it
    shown = shown_token(client.get(f"/review/{rec.id}").text)
    refused = client.post(
        f"/review/{rec.id}/decision", data={"action": "accept", "shown": shown}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 400
    accepted = client.post(
        f"/review/{rec.id}/decision",
        data={"action": "accept", "shown": shown},
        headers={"HX-Request": "true", "X-CSRFToken": header_token},
    )
    assert accepted.status_code == 200, accepted.text


def test_opening_a_case_never_claims_it_and_only_our_own_pages_claim_at_once(reviewer, session, client, htmx_client):
    rec_id = session.scalar(select(Recommendation.id).order_by(Recommendation.id))
    for site in ("cross-site", "same-site", "none", None):
        headers = {"Sec-Fetch-Site": site} if site else {}
        page = client.get(f"/review/{rec_id}", headers=headers)
        assert page.status_code == 200 and 'id="claim-button"' in page.text and "data-case-id" not in page.text
        assert 'hx-trigger="load, submit"' not in page.text and "Sec-Fetch-Site" in page.headers["Vary"]
    ours = client.get(f"/review/{rec_id}", headers={"Sec-Fetch-Site": "same-origin"}).text
    assert 'hx-trigger="load, submit"' in ours and f'hx-post="/review/{rec_id}"' in ours
    session.rollback()
    assert session.scalar(select(Recommendation.claimed_by_id).where(Recommendation.id == rec_id)) is None
    claimed = htmx_client.post(f"/review/{rec_id}")
    assert claimed.status_code == 200 and case_id(claimed.text) == rec_id and "<html" not in claimed.text
    session.rollback()
    assert session.scalar(select(Recommendation.claimed_by_id).where(Recommendation.id == rec_id)) == reviewer.id
    # Now the reviewer holds it, the plain page shows the decision controls straight away.
    assert case_id(client.get(f"/review/{rec_id}").text) == rec_id


def test_the_next_case_page_takes_a_case_only_by_post(reviewer, session, client, htmx_client):
    page = client.get("/review/next", headers={"Sec-Fetch-Site": "same-origin"})
    assert page.status_code == 200 and "Take the next free case" in page.text and "data-case-id" not in page.text
    session.rollback()
    assert session.scalar(select(func.count()).where(Recommendation.claimed_by_id.is_not(None))) == 0
    taken = htmx_client.post("/review/next")
    rec_id = case_id(taken.text)
    assert taken.headers["HX-Push-Url"] == f"/review/{rec_id}"


def test_claiming_needs_the_csrf_token(app, session):
    app.config["WTF_CSRF_ENABLED"] = True
    make_model(session)
    rec = make_case(session)
    user = make_user(session)
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    page = client.get(f"/review/{rec.id}").text
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/review/{rec.id}").status_code == 400
    assert client.post("/review/next").status_code == 400
    session.rollback()
    assert session.scalar(select(Recommendation.claimed_by_id).where(Recommendation.id == rec.id)) is None
    assert client.post(f"/review/{rec.id}", data={"csrf_token": form_token}).status_code == 302
    session.rollback()
    assert session.scalar(select(Recommendation.claimed_by_id).where(Recommendation.id == rec.id)) == user.id


def test_a_decision_applies_only_to_the_case_shown_to_this_reviewer(reviewer, app, client, htmx_client, session):
    page = client.post("/review/next", follow_redirects=True).text
    rec_id, shown = case_id(page), shown_token(page)
    other_id = session.scalar(select(Recommendation.id).where(Recommendation.id != rec_id).order_by(Recommendation.id))
    client.post(f"/review/{other_id}")  # the reviewer holds the other case too, but was shown it under another token
    for url, data in (
        (f"/review/{other_id}/decision", {"action": "accept", "shown": shown}),  # another case's token
        (f"/review/{rec_id}/decision", {"action": "accept"}),  # no token
        (f"/review/{rec_id}/decision", {"action": "accept", "shown": shown[:-1] + ("1" if shown[-1] == "0" else "0")}),
        (f"/review/{rec_id}/decision", {"action": "accept", "shown": "1." + shown.split(".")[1]}),
    ):
        refused = htmx_client.post(url, data=data)
        assert refused.status_code == 409, url
        assert "not made on the case shown to you" in refused.text
    # Another reviewer cannot use Rita's token either.
    session.rollback()
    otto = app.test_client()
    login(otto, make_user(session, name="Otto"))
    assert otto.post(f"/review/{rec_id}/decision", data={"action": "accept", "shown": shown}).status_code == 409
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Decision)) == 0
    # Released and claimed again, the case is shown under a new claim: the old page's token is refused.
    client.post(f"/review/{rec_id}/release")
    again = client.post(f"/review/{rec_id}", follow_redirects=True).text
    assert htmx_client.post(f"/review/{rec_id}/decision", data={"action": "accept", "shown": shown}).status_code == 409
    assert (
        htmx_client.post(
            f"/review/{rec_id}/decision", data={"action": "accept", "shown": shown_token(again)}
        ).status_code
        == 200
    )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Decision)) == 1


def test_the_settle_time_is_a_setting_on_the_panel(reviewer, app, client):
    assert 'data-settle-ms="400"' in client.get("/review/next").text
    app.config["DECISION_SETTLE_MS"] = 650
    assert 'data-settle-ms="650"' in client.get("/review/next").text


def test_undo_brings_the_case_back_and_gives_the_next_one_back(reviewer, client, htmx_client, session):
    page = client.post("/review/next", follow_redirects=True).text
    rec_id = case_id(page)
    decided = htmx_client.post(f"/review/{rec_id}/decision", data={"action": "accept", "shown": shown_token(page)})
    next_id = case_id(decided.text)
    assert 'id="undo-form"' in decided.text and f'name="shown_case" value="{next_id}"' in decided.text
    ms = int(re.search(r'data-undo-ms="(\d+)"', decided.text).group(1))
    assert 9000 < ms <= 10000
    undone = htmx_client.post(f"/review/{rec_id}/undo", data={"shown_case": next_id})
    assert undone.status_code == 200 and case_id(undone.text) == rec_id
    assert "Undone: case EXT-1 is open again" in undone.text and 'id="undo-form"' not in undone.text
    assert undone.headers["HX-Push-Url"] == f"/review/{rec_id}"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Decision)) == 0
    claims = dict(session.execute(select(Recommendation.id, Recommendation.claimed_by_id)).all())
    assert claims[rec_id] == reviewer.id and claims[next_id] is None
    # The reopened case is decided with the token of the panel the undo showed.
    again = htmx_client.post(
        f"/review/{rec_id}/decision", data={"action": "escalate", "note": "x", "shown": shown_token(undone.text)}
    )
    assert again.status_code == 200 and "Escalated case EXT-1." in again.text


def test_undo_after_ten_seconds_is_refused(reviewer, client, htmx_client, session):
    page = client.post("/review/next", follow_redirects=True).text
    rec_id = case_id(page)
    decided = htmx_client.post(f"/review/{rec_id}/decision", data={"action": "accept", "shown": shown_token(page)})
    next_id = case_id(decided.text)
    session.rollback()
    decision = session.scalar(select(Decision))
    decision.decided_at -= timedelta(seconds=11)
    session.commit()
    refused = htmx_client.post(f"/review/{rec_id}/undo", data={"shown_case": next_id})
    assert refused.status_code == 409 and case_id(refused.text) == next_id
    assert "Nothing was undone: your decision on case EXT-1 is final" in refused.text
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Decision)) == 1


def test_the_page_shows_the_ai_exactly_when_the_decision_records_it_shown(reviewer, client, session):
    """Screen and record agree, case by case, inside an A/B test that hides the AI from half the cases."""
    from feedback.impact import experiments

    analyst = make_user(session, "analyst")
    model_id = session.scalar(select(Recommendation.model_id))
    experiment = experiments.create_experiment(
        session, analyst, key="ab1", name="AI on or off", model_id=model_id, kind="ab", unit="case"
    )
    experiments.start_experiment(session, analyst, experiment_id=experiment.id)
    for n in range(4, 17):
        make_case(session, n)
    seen: dict[int, bool] = {}
    while True:
        page = client.post("/review/next", follow_redirects=True).text
        if "data-case-id" not in page:
            break
        rec_id, shown = case_id(page), shown_token(page)
        seen[rec_id] = "AI recommends" in page
        assert seen[rec_id] != ("The AI recommendation is hidden" in page)
        data = (
            {"action": "accept", "shown": shown}
            if seen[rec_id]
            else {"action": "accept", "final_action": "pay", "shown": shown}
        )
        assert client.post(f"/review/{rec_id}/decision", data=data).status_code in (200, 302, 303)
    session.rollback()
    recorded = dict(session.execute(select(Decision.recommendation_id, Decision.ai_shown)).all())
    assert recorded == seen and len(seen) == 16
    assert set(seen.values()) == {True, False}  # both arms were on screen
