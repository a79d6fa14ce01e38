"""Override analytics over HTTP, every number checked against a pandas group-by over raw rows."""

from __future__ import annotations

import random
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select, update
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from feedback import permissions
from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.models import Decision, ModelVersion, Recommendation, User
from feedback.outcomes import services as outcomes
from feedback.overrides import rollup
from feedback.review import decisions, ingest
from feedback.schemas import ModelVersionIn, OutcomeIn, RecommendationIn
from tests.factories import TEST_ACTOR, make_model, make_user, payload, token_for

ROW_KEYS = {"key", "decisions", "overrides", "escalations", "override_rate", "ci_low", "ci_high"}


@pytest.fixture
def world(app, session):
    """Two versions, three sites, four reviewers, 160 decided cases, outcomes for half of them."""
    make_model(session)
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="production")
    )
    rng = random.Random(3)
    items = [
        RecommendationIn.model_validate(
            payload(
                n,
                model_version="v1" if n % 2 else "v2",
                site=("Leeds", "Bristol", "Cardiff")[n % 3],
                segment={"band": "big" if n % 5 == 0 else "small"},
                confidence=round(rng.uniform(0.3, 0.99), 3),
                recommended_action=("pay", "review")[n % 2],
            )
        )
        for n in range(160)
    ]
    ids = [r.id for r in ingest.ingest_recommendations(session, TEST_ACTOR, items=items)]
    reviewers = [make_user(session, name=f"Rev {i}") for i in range(4)]
    for n, rec_id in enumerate(ids):
        rev = reviewers[n % 4]
        big = n % 5 == 0
        roll = rng.random()
        if roll < 0.05:
            decisions.record_decision(session, rev, recommendation_id=rec_id, action="escalate", note="hm")
        elif roll < (0.55 if big else 0.15) + (0.1 if n % 4 == 3 else 0):
            decisions.record_decision(
                session,
                rev,
                recommendation_id=rec_id,
                action="override",
                final_action="deny",
                reason_code=rng.choice(["missing_context", "policy_exception"]),
            )
        else:
            decisions.record_decision(session, rev, recommendation_id=rec_id, action="accept")
    truth = [
        OutcomeIn.model_validate(
            {
                "recommendation_id": rec_id,
                "outcome": rng.choice(["pay", "deny"]),
                "observed_at": "2026-01-01T00:00:00+00:00",
                "source": "ledger",
            }
        )
        for rec_id in ids[::2]
    ]
    outcomes.record_outcomes(session, TEST_ACTOR, items=truth)
    # A handful of decisions fall outside the default 30-day window.
    session.execute(
        update(Decision).where(Decision.recommendation_id.in_(ids[:8])).values(decided_at=utcnow() - timedelta(days=45))
    )
    rollup.rebuild(session)  # history was rewritten by hand above; recount it
    session.commit()
    return {"headers": token_for(app, session, make_user(session, "analyst")), "ids": ids}


def raw(session) -> pd.DataFrame:
    """Every decision in the default window as plain rows, straight from the tables."""
    session.rollback()
    rows = session.execute(
        select(
            Decision.action,
            Decision.reason_code,
            Decision.final_action,
            Decision.decided_at,
            Decision.ai_shown,
            ModelVersion.version.label("model_version"),
            Recommendation.site,
            Recommendation.segment,
            Recommendation.confidence,
            Recommendation.recommended_action,
            Decision.reviewer_id.label("reviewer"),
            Recommendation.id.label("rec_id"),
        )
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .join(User, User.id == Decision.reviewer_id)
    ).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "action",
            "reason_code",
            "final_action",
            "decided_at",
            "ai_shown",
            "model_version",
            "site",
            "segment",
            "confidence",
            "recommended_action",
            "reviewer",
            "rec_id",
        ],
    )
    # The analyst asking sees reviewers by pseudonym only.
    frame["reviewer"] = frame["reviewer"].map(permissions.pseudonym)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    start = pd.Timestamp(utcnow().date() - timedelta(days=29), tz="UTC")
    frame = frame[(frame["decided_at"] >= start) & frame["ai_shown"]]
    frame["segment.band"] = frame["segment"].map(lambda s: s["band"])
    frame["confidence_decile"] = frame["confidence"].map(
        lambda c: f"{min(int(c * 10), 9) / 10:.1f}–{(min(int(c * 10), 9) + 1) / 10:.1f}"
    )
    return frame


def expected(frame: pd.DataFrame, by: str) -> dict[str, dict[str, float]]:
    """Counts, rate and Wilson interval per group, computed independently."""
    out = {}
    for key, g in frame.groupby(by):
        accepts, overrides = int((g["action"] == "accept").sum()), int((g["action"] == "override").sum())
        low, high = proportion_confint(overrides, accepts + overrides, alpha=0.05, method="wilson")
        out[str(key)] = {
            "decisions": len(g),
            "overrides": overrides,
            "escalations": int((g["action"] == "escalate").sum()),
            "override_rate": overrides / (accepts + overrides),
            "ci_low": low,
            "ci_high": high,
        }
    return out


@pytest.mark.parametrize("by", ["model_version", "site", "reviewer", "segment.band", "confidence_decile"])
def test_breakdowns_match_an_independent_group_by(client, session, world, by):
    response = client.get(f"/api/v1/analytics/overrides?model=claims&by={by}", headers=world["headers"])
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"rows", "total"} and all(set(r) >= ROW_KEYS for r in body["rows"])
    truth = expected(raw(session), by)
    assert {r["key"] for r in body["rows"]} == set(truth)
    for row in body["rows"]:
        for name, value in truth[row["key"]].items():
            assert row[name] == pytest.approx(value, abs=1e-9), (row["key"], name)
    frame = raw(session)
    accepts, overrides = int((frame["action"] == "accept").sum()), int((frame["action"] == "override").sum())
    assert body["total"]["decisions"] == len(frame)
    assert body["total"]["override_rate"] == pytest.approx(overrides / (accepts + overrides), abs=1e-9)


def test_reason_codes_add_up_to_the_total(client, session, world):
    body = client.get("/api/v1/analytics/overrides?model=claims&by=reason_code", headers=world["headers"]).json
    frame = raw(session)
    judged = int(frame["action"].isin(["accept", "override"]).sum())
    for row in body["rows"]:
        k = int(((frame["action"] == "override") & (frame["reason_code"] == row["key"])).sum())
        low, high = proportion_confint(k, judged, method="wilson")
        assert (row["overrides"], row["override_rate"]) == (k, pytest.approx(k / judged, abs=1e-12))
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert sum(r["override_rate"] for r in body["rows"]) == pytest.approx(body["total"]["override_rate"], abs=1e-12)


def test_date_range_and_errors(client, session, world):
    old = (utcnow() - timedelta(days=46)).date().isoformat()
    wide = client.get(f"/api/v1/analytics/overrides?model=claims&by=site&from={old}", headers=world["headers"]).json
    narrow = client.get("/api/v1/analytics/overrides?model=claims&by=site", headers=world["headers"]).json
    assert wide["total"]["decisions"] == narrow["total"]["decisions"] + 8
    h = world["headers"]
    assert client.get("/api/v1/analytics/overrides?model=claims&by=colour", headers=h).json["error"][
        "fields"
    ].keys() == {"by"}
    bad = client.get("/api/v1/analytics/overrides?model=claims&from=yesterday", headers=h)
    assert bad.status_code == 422 and bad.json["error"]["fields"]["from"].startswith("must be a date like 2026-01-31")
    backwards = client.get("/api/v1/analytics/overrides?model=claims&from=2026-05-02&to=2026-05-01", headers=h)
    assert backwards.status_code == 200 and backwards.json["total"]["decisions"] == 0  # an empty range, not an error
    assert client.get("/api/v1/analytics/overrides?model=nope", headers=h).status_code == 404
    frontline = token_for(client.application, session, make_user(session, "frontline"))
    assert client.get("/api/v1/analytics/overrides?model=claims", headers=frontline).status_code == 403


def test_version_comparison_and_accuracy(client, session, world):
    h = world["headers"]
    comparison = client.get("/api/v1/analytics/overrides/compare?model=claims&a=v2&b=v1", headers=h).json
    frame = raw(session)
    counts = {
        v: (
            int(((frame["model_version"] == v) & (frame["action"] == "override")).sum()),
            int(((frame["model_version"] == v) & frame["action"].isin(["accept", "override"])).sum()),
        )
        for v in ("v1", "v2")
    }
    (k2, n2), (k1, n1) = counts["v2"], counts["v1"]
    low, high = confint_proportions_2indep(k2, n2, k1, n1, method="newcomb", compare="diff")
    assert (comparison["ci_low"], comparison["ci_high"]) == pytest.approx((low, high), abs=1e-12)
    assert (comparison["p_value"] < 0.05) == (low > 0 or high < 0)
    assert comparison["difference"] == pytest.approx(k2 / n2 - k1 / n1, abs=1e-12)
    missing = client.get("/api/v1/analytics/overrides/compare?model=claims&a=v2&b=v9", headers=h)
    assert missing.status_code == 404 and set(missing.json["error"]["fields"]) == {"b"}  # v9 has no decisions

    rows = client.get("/api/v1/analytics/accuracy?model=claims&by=model_version", headers=h).json["rows"]
    session.rollback()
    from feedback.models import Outcome

    labels = dict(session.execute(select(Outcome.recommendation_id, Outcome.label)).all())
    judged = frame[frame["action"] != "escalate"].copy()
    judged["truth"] = judged["rec_id"].map(labels)
    judged = judged.dropna(subset=["truth"])
    for row in rows:
        g = judged[judged["model_version"] == row["key"]]
        assert row["with_outcome"] == len(g)
        assert row["ai_accuracy"] == pytest.approx((g["recommended_action"] == g["truth"]).mean(), abs=1e-9)
        assert row["final_accuracy"] == pytest.approx((g["final_action"] == g["truth"]).mean(), abs=1e-9)
        overrides = g[g["action"] == "override"]
        corrected = (
            (overrides["final_action"] == overrides["truth"]) & (overrides["recommended_action"] != overrides["truth"])
        ).sum()
        assert row["corrected"] == corrected


def test_control_chart_and_reviewers(client, session, world):
    h = world["headers"]
    chart = client.get("/api/v1/analytics/control-chart?model=claims", headers=h).json["rows"]
    frame = raw(session)
    assert sum(r["n"] for r in chart) == int(frame["action"].isin(["accept", "override"]).sum())
    assert {"centre", "ucl", "lcl", "signal", "run_of_8"} <= set(chart[0])
    people = client.get("/api/v1/analytics/reviewers?model=claims", headers=h).json["rows"]
    for row in people:
        mine = frame[frame["reviewer"] == row["reviewer"]]
        assert row["decisions"] == len(mine)
        assert row["accept_rate"] == pytest.approx((mine["action"] == "accept").mean(), abs=1e-12)
        judged = mine["action"].isin(["accept", "override"]).sum()
        assert row["override_rate"] == pytest.approx((mine["action"] == "override").sum() / judged, abs=1e-12)
        assert row["escalation_rate"] == pytest.approx((mine["action"] == "escalate").mean(), abs=1e-12)


def test_action_matrix_matches_raw_rows(client, session, world):
    rows = client.get("/api/v1/analytics/action-matrix?model=claims", headers=world["headers"]).json["rows"]
    frame = raw(session)
    final = frame["final_action"].fillna("(escalated)")
    expected = frame.groupby([frame["recommended_action"], final]).size()
    assert {(r["recommended"], r["final"]): r["decisions"] for r in rows} == {k: int(v) for k, v in expected.items()}
