"""Shadow challengers through the API: idempotency, conflicts, validation at depth, ownership, analytics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportion_confint

from feedback.catalog import services as catalog
from feedback.challengers import services as challenger_services
from feedback.db import utcnow
from feedback.models import ChallengerRecommendation, Decision, ModelVersion, Recommendation
from feedback.review import decisions
from feedback.schemas import ChallengerIn, ModelVersionIn
from tests.factories import TEST_ACTOR, make_case, make_model, make_owner, make_user, payload, token_for


def challenger(version: str = "v2", action: str = "deny", confidence: float = 0.7, **overrides):
    """A valid challenger body for the `claims` model."""
    body = {
        "model_version": version,
        "recommended_action": action,
        "confidence": confidence,
        "explanation": {"summary": "Challenger thinks otherwise", "factors": [{"name": "amount", "contribution": 0.4}]},
    }
    body.update(overrides)
    return body


@pytest.fixture
def api(app, session, client):
    """The claims model with versions v1 (champion, production), v2 and v3 (shadow), its owner's token, others'."""
    make_model(session)
    for version in ("v2", "v3"):
        catalog.add_model_version(
            session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version=version, stage="shadow")
        )
    make_model(session, key="fraud", actions=("clear", "hold"))
    owner = make_owner(session, "claims")
    return {
        "client": client,
        "session": session,
        "owner": token_for(app, session, owner),
        "other_owner": token_for(app, session, make_owner(session, "fraud")),
        "admin": token_for(app, session, make_user(session, "admin")),
        "reviewer": token_for(app, session, make_user(session, "frontline")),
        "analyst": token_for(app, session, make_user(session, "analyst")),
        "case": make_case(session, 1).id,
    }


def post(api, body, who="owner", case_id=None):
    """POST challengers for the fixture's case (or another)."""
    url = f"/api/v1/recommendations/{case_id or api['case']}/challengers"
    return api["client"].post(url, json=body, headers=api[who])


def stored(session) -> int:
    """Challenger rows stored (after ending the test session's read snapshot, which may predate the request)."""
    session.rollback()
    return session.scalar(select(func.count()).select_from(ChallengerRecommendation))


def test_a_challenger_is_stored_once_and_a_replay_answers_200_with_the_same_id(api):
    first = post(api, challenger())
    assert first.status_code == 201
    assert first.json == {"id": first.json["id"], "model_version": "v2", "created": True}
    # Same content, keys in another order: the same payload.
    again = post(api, dict(reversed(list(challenger().items()))))
    assert again.status_code == 200
    assert again.json == {"id": first.json["id"], "model_version": "v2", "created": False}
    assert stored(api["session"]) == 1


def test_several_versions_at_once_and_a_batch_marks_each_as_new_or_replayed(api):
    post(api, challenger("v2"))
    response = post(api, [challenger("v2"), challenger("v3", action="review")])
    assert response.status_code == 201
    assert [(i["model_version"], i["created"]) for i in response.json["items"]] == [("v2", False), ("v3", True)]
    assert stored(api["session"]) == 2


def test_a_changed_payload_for_the_same_case_and_version_is_409_and_changes_nothing(api):
    post(api, challenger(confidence=0.7))
    response = post(api, challenger(confidence=0.71))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert response.json["error"]["fields"] == {
        "model_version": "already stored for this case with a different payload"
    }
    api["session"].rollback()
    row = api["session"].scalar(select(ChallengerRecommendation))
    assert row.confidence == 0.7


def test_a_conflict_anywhere_in_a_batch_stores_nothing(api):
    post(api, challenger("v2"))
    response = post(api, [challenger("v3"), challenger("v2", action="pay")])
    assert response.status_code == 409
    assert response.json["error"]["fields"] == {
        "[1].model_version": "already stored for this case with a different payload"
    }
    assert stored(api["session"]) == 1


def test_the_same_version_twice_with_different_payloads_is_409_repeated(api):
    response = post(api, [challenger("v2"), challenger("v2", confidence=0.2)])
    assert response.status_code == 409
    assert response.json["error"]["code"] == "repeated_in_request"
    assert "[1].model_version" in response.json["error"]["fields"]
    assert stored(api["session"]) == 0


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (challenger("v1"), 409, "not_allowed", "model_version"),  # the champion's own version
        (challenger("v9"), 404, "unknown_reference", "model_version"),
        (challenger(action="hold"), 409, "not_allowed", "recommended_action"),  # another model's action
        (challenger(confidence=1.5), 422, "validation_failed", "confidence"),
        (challenger(confidence="high"), 422, "validation_failed", "confidence"),
        (
            challenger(explanation={"summary": "x", "factors": [{"name": "amount"}]}),
            422,
            "validation_failed",
            "explanation.factors[0].contribution",
        ),
        (
            challenger(explanation={"summary": "x", "factors": [{"name": "a", "contribution": 1, "extra": 2}]}),
            422,
            "validation_failed",
            "explanation.factors[0].extra",
        ),
        ({k: v for k, v in challenger().items() if k != "explanation"}, 422, "validation_failed", "explanation"),
        (challenger(model_version=""), 422, "validation_failed", "model_version"),
        (challenger(surprise=True), 422, "validation_failed", "surprise"),
    ],
)
def test_every_field_is_checked_at_every_depth_and_named(api, body, status, code, field):
    response = post(api, body)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert field in response.json["error"]["fields"], response.json["error"]["fields"]
    assert stored(api["session"]) == 0


def test_a_version_of_another_model_is_unknown_for_this_case(api):
    catalog.add_model_version(api["session"], TEST_ACTOR, model_key="fraud", spec=ModelVersionIn(version="v7"))
    response = post(api, challenger("v7"))
    assert response.status_code == 404
    assert response.json["error"]["fields"] == {"model_version": "claims has no version 'v7'"}


def test_an_unknown_case_is_404(api):
    assert post(api, challenger(), case_id=999_999).status_code == 404


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 201), ("admin", 201), ("other_owner", 403), ("reviewer", 403), ("analyst", 403)]
)
def test_only_the_models_owners_and_admins_send_its_challengers(api, who, status):
    response = post(api, challenger(), who=who)
    assert response.status_code == status
    assert stored(api["session"]) == (1 if status == 201 else 0)


def test_challengers_sent_at_ingest_are_idempotent_and_conflict_like_the_rest(api):
    client, session = api["client"], api["session"]
    item = payload(2, challengers=[challenger("v2"), challenger("v3", action="pay")])
    first = client.post("/api/v1/recommendations", json=item, headers=api["owner"])
    assert first.status_code == 201
    rec_id = first.json["id"]
    again = client.post("/api/v1/recommendations", json=item, headers=api["owner"])
    assert again.status_code == 200
    assert again.json["id"] == rec_id
    session.rollback()
    versions = session.scalars(
        select(ModelVersion.version)
        .join(ChallengerRecommendation, ChallengerRecommendation.model_version_id == ModelVersion.id)
        .where(ChallengerRecommendation.recommendation_id == rec_id)
    ).all()
    assert sorted(versions) == ["v2", "v3"]
    changed = {**item, "challengers": [challenger("v2", confidence=0.1)]}
    response = client.post("/api/v1/recommendations", json=changed, headers=api["owner"])
    assert response.status_code == 409
    assert response.json["error"]["fields"] == {
        "challengers[0].model_version": "already stored for this case with a different payload"
    }
    assert stored(session) == 2


def test_a_bad_challenger_at_ingest_stores_neither_the_case_nor_its_challengers(api):
    client, session = api["client"], api["session"]
    batch = [payload(5, challengers=[challenger("v2")]), payload(6, challengers=[challenger("v1")])]
    response = client.post("/api/v1/recommendations", json=batch, headers=api["owner"])
    assert response.status_code == 409
    assert response.json["error"]["fields"] == {
        "[1].challengers[0].model_version": "is the case's own version; a challenger is another one"
    }
    assert session.scalar(select(func.count()).select_from(Recommendation)) == 1  # the fixture's case only
    assert stored(session) == 0
    nested = payload(7, challengers=[challenger(explanation={"summary": 3})])
    response = client.post("/api/v1/recommendations", json=nested, headers=api["owner"])
    assert response.status_code == 422
    assert "challengers[0].explanation.summary" in response.json["error"]["fields"]


def test_another_models_owner_may_not_send_challengers_at_ingest(api):
    before = api["session"].scalar(select(func.count()).select_from(Recommendation))
    item = payload(3, challengers=[challenger("v2")])
    response = api["client"].post("/api/v1/recommendations", json=item, headers=api["other_owner"])
    assert response.status_code == 403
    assert stored(api["session"]) == 0
    # Nor the case alone: only a model's owners (and admins) send its cases.
    response = api["client"].post("/api/v1/recommendations", json=payload(3), headers=api["other_owner"])
    assert response.status_code == 403 and "only this model's owners" in response.json["error"]["message"]
    assert api["session"].scalar(select(func.count()).select_from(Recommendation)) == before


def add(session, case_id, body):
    """Store a challenger through the service (the API's own tests are above)."""
    challenger_services.add_challengers(
        session, TEST_ACTOR, recommendation_id=case_id, items=[ChallengerIn.model_validate(body)]
    )


def _decide(session, rec, reviewer, final):
    """Countersign a case with this final action."""
    action = "accept" if final == rec.recommended_action else "override"
    decisions.record_decision(
        session,
        reviewer,
        recommendation_id=rec.id,
        action=action,
        final_action=None if action == "accept" else final,
        reason_code=None if action == "accept" else "missing_context",
    )


def test_analytics_rows_count_what_was_stored_with_statsmodels_intervals_and_mcnemar(api):
    client, session = api["client"], api["session"]
    reviewer = make_user(session, "frontline", email="rita@example.com")
    # (champion action, challenger action, reviewer's final, outcome): the champion always says pay.
    plan = [("deny", "deny", "deny")] * 6 + [("deny", "pay", "pay")] * 3 + [("pay", "pay", "deny")] * 2
    plan += [("review", "review", "pay")] * 4 + [("pay", "pay", "pay")] * 5
    outcomes = []
    for n, (challenger_action, final, truth) in enumerate(plan, start=10):
        rec = make_case(session, n)
        add(session, rec.id, challenger("v3", action=challenger_action))
        _decide(session, rec, reviewer, final)
        outcomes.append(
            {"recommendation_id": rec.id, "outcome": truth, "observed_at": "2026-11-01T00:00:00Z", "source": "audit"}
        )
    assert client.post("/api/v1/outcomes", json=outcomes, headers=api["owner"]).status_code == 201
    response = client.get("/api/v1/analytics/challengers?model=claims&version=v3", headers=api["analyst"])
    assert response.status_code == 200, response.json
    rows = {(r["decisions"], r["segment"]): r for r in response.json["rows"]}
    row = rows[("all", None)]
    n = len(plan)
    agree = sum(c == f for c, f, _ in plan)
    right = sum(c == t for c, _, t in plan)
    assert row["n"] == n and row["version"] == "v3"
    assert row["agreement"] == pytest.approx(agree / n)
    assert (row["agreement_ci_low"], row["agreement_ci_high"]) == pytest.approx(
        proportion_confint(agree, n, method="wilson"), abs=1e-9
    )
    assert row["would_be_override_rate"] == pytest.approx(1 - agree / n)  # every decision here saw the AI
    assert row["accuracy"] == pytest.approx(right / n)
    assert (row["accuracy_ci_low"], row["accuracy_ci_high"]) == pytest.approx(
        proportion_confint(right, n, method="wilson"), abs=1e-9
    )
    only_champion = sum(t == "pay" and c != "pay" for c, _, t in plan)
    only_challenger = sum(t != "pay" and c == t for c, _, t in plan)
    assert (row["right_only_champion"], row["right_only_challenger"]) == (only_champion, only_challenger)
    theirs = sm_mcnemar([[0, only_champion], [only_challenger, 0]], exact=True)
    assert row["mcnemar_p"] == pytest.approx(theirs.pvalue, abs=1e-9)
    assert row["mcnemar_method"] == "exact binomial"
    assert ("unaided", None) not in rows  # every reviewer saw the AI
    by_segment = client.get("/api/v1/analytics/challengers?model=claims&by=segment.claim_band", headers=api["analyst"])
    segment_rows = [r for r in by_segment.json["rows"] if r["segment"] is not None]
    assert [(r["segment"], r["n"]) for r in segment_rows] == [("over_10k", n)]


def test_unaided_decisions_are_reported_apart(api):
    session = api["session"]
    v1 = session.scalar(select(ModelVersion.id).where(ModelVersion.version == "v1"))
    catalog.set_version_stage(session, TEST_ACTOR, version_id=v1, stage="shadow")
    reviewer = make_user(session, "frontline", email="una@example.com")
    rec = make_case(session, 20)
    add(session, rec.id, challenger("v2", action="deny"))
    decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="override", final_action="deny")
    response = api["client"].get("/api/v1/analytics/challengers?model=claims", headers=api["analyst"])
    rows = {(r["decisions"], r["version"]): r for r in response.json["rows"]}
    assert rows[("unaided", "v2")]["n"] == 1
    assert rows[("unaided", "v2")]["agreement"] == 1.0
    assert rows[("unaided", "v2")]["would_be_override_rate"] is None  # nobody saw an AI to override
    assert "swayed" in response.json["unaided_note"]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("model=nope", 404, None),
        ("model=claims&version=v9", 404, "version"),
        ("model=claims&by=site", 422, "by"),
        ("", 422, "model"),
        ("model=claims&from=2026-02-30", 422, "from"),
        ("model=claims&to=yesterday", 422, "to"),
    ],
)
def test_bad_analytics_parameters_are_named(api, query, status, field):
    response = api["client"].get(f"/api/v1/analytics/challengers?{query}", headers=api["analyst"])
    assert response.status_code == status
    if field:
        assert field in response.json["error"]["fields"]


def test_a_date_window_counts_only_the_cases_decided_in_it(api):
    session, client = api["session"], api["client"]
    reviewer = make_user(session, "frontline", email="win@example.com")
    today = utcnow().date()
    for n, days_ago in enumerate((0, 0, 3, 10), start=30):
        rec = make_case(session, n)
        add(session, rec.id, challenger("v2", action="deny"))
        _decide(session, rec, reviewer, "pay")
        decision = session.scalar(select(Decision).where(Decision.recommendation_id == rec.id))
        decision.decided_at -= timedelta(days=days_ago)  # decided that many days ago
    session.commit()

    def counted(query: str) -> tuple[int | None, dict]:
        response = client.get(f"/api/v1/analytics/challengers?model=claims&version=v2{query}", headers=api["analyst"])
        assert response.status_code == 200, response.json
        rows = [r for r in response.json["rows"] if r["decisions"] == "all" and r["segment"] is None]
        return (rows[0]["n"] if rows else None), response.json

    assert counted("")[0] == 4  # all time, as before
    assert counted(f"&from={today - timedelta(days=3)}")[0] == 3
    n, body = counted(f"&from={today - timedelta(days=10)}&to={today - timedelta(days=1)}")
    assert n == 2 and (body["since"], body["until"]) == (
        str(today - timedelta(days=10)),
        str(today - timedelta(days=1)),
    )
    assert counted(f"&to={today - timedelta(days=4)}")[0] == 1
    assert counted(f"&from={today}&to={today - timedelta(days=1)}")[0] is None  # a reversed window holds nothing


def test_reviewers_may_not_read_challenger_analytics(api):
    assert api["client"].get("/api/v1/analytics/challengers?model=claims", headers=api["reviewer"]).status_code == 403


def test_concurrent_sends_of_the_same_challengers_store_them_once(app, api):
    """Three services send the same two challengers at the same instant: one stores them, the others replay."""
    import threading

    body = [challenger("v2"), challenger("v3", action="review")]
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def send() -> None:
        barrier.wait()
        response = app.test_client().post(
            f"/api/v1/recommendations/{api['case']}/challengers", json=body, headers=api["owner"]
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 200, 201], statuses  # exactly one created them
    assert stored(api["session"]) == 2
