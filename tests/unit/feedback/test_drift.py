"""Drift histograms kept at ingest equal a recount; drift rows, windows and the drift guardrail."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, delete, func, inspect, select
from sqlalchemy.orm import Session

from feedback import background, migrate
from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.drift import histograms, queries, reports
from feedback.errors import NotFound, ValidationFailed
from feedback.models import Alert, AuditEvent, DriftCount, ModelVersion
from feedback.overrides import guardrails
from feedback.readiness import services as readiness
from feedback.review import ingest
from feedback.schemas import RecommendationIn
from tests.factories import TEST_ACTOR, make_model, payload
from tests.helpers import store_on_days


def counts(session) -> list[tuple]:
    """Every histogram cell with its shards added together."""
    table = DriftCount
    rows = session.execute(
        select(
            table.model_version_id,
            table.day,
            table.feature,
            table.kind,
            table.key,
            func.sum(table.count),
            func.sum(table.total),
        )
        .group_by(table.model_version_id, table.day, table.feature, table.kind, table.key)
        .order_by(table.model_version_id, table.day, table.feature, table.kind, table.key)
    ).all()
    return [(*row[:6], round(row[6], 6)) for row in rows]  # sums of floats in another order differ in the last bits


def test_values_of_one_recommendation():
    row = {
        "confidence": 0.75,
        "recommended_action": "pay",
        "features": {
            "amount": 1200.5,
            "count": 3,
            "card_present": True,
            "channel": "web",
            "note": None,
            "nested": {"a": 1},
            "list": [1, 2],
            "bad name!": 4,
            "huge": 1e300,
        },
    }
    found = {(f, k): key for f, k, key, _ in histograms.values_of(row)}
    assert found[("confidence", "numeric")] == str(histograms.numeric_bin(0.75))
    assert found[("recommended_action", "categorical")] == "pay"
    assert found[("features.card_present", "categorical")] == "true"
    assert found[("features.channel", "categorical")] == "web"
    assert ("features.count", "numeric") in found and ("features.huge", "numeric") in found
    assert not {f for f, _ in found} & {"features.note", "features.nested", "features.list", "features.bad name!"}
    many = {"features": {f"f{i:03d}": i for i in range(80)}}
    assert len(histograms.values_of(many)) == histograms.MAX_FEATURES


def test_histograms_kept_at_ingest_equal_a_recount(session):
    make_model(session)
    rng = random.Random(4)
    items = [
        RecommendationIn.model_validate(
            payload(
                n,
                confidence=round(rng.random(), 3),
                recommended_action=rng.choice(["pay", "deny"]),
                features={
                    "amount": round(rng.lognormvariate(7, 1), 2),
                    "channel": rng.choice(["web", "phone"]),
                    "urgent": rng.random() < 0.3,
                    "offset": rng.gauss(0, 1),
                },
            )
        )
        for n in range(300)
    ]
    for start in range(0, 300, 100):
        ingest.ingest_recommendations(session, TEST_ACTOR, items=items[start : start + 100])
    ingest.ingest_recommendations(session, TEST_ACTOR, items=items[:50])  # a replay adds nothing
    kept = counts(session)
    assert sum(c[5] for c in kept if c[2] == "confidence") == 300
    histograms.rebuild(session)
    session.commit()
    assert counts(session) == kept
    channels = {c[4]: c[5] for c in kept if c[2] == "features.channel"}
    assert sum(channels.values()) == 300 and set(channels) == {"web", "phone"}


def test_a_failed_ingest_counts_nothing(session):
    make_model(session)
    good = payload(1, features={"amount": 5})
    bad = payload(2, model_version="nope")
    items = [RecommendationIn.model_validate(p) for p in (good, bad)]
    with pytest.raises(NotFound):
        ingest.ingest_recommendations(session, TEST_ACTOR, items=items)
    session.rollback()
    assert counts(session) == []


def _version(session) -> ModelVersion:
    return session.scalars(select(ModelVersion)).one()


def test_default_reference_is_the_first_14_days_in_pilot(session):
    make_model(session, stage="shadow")
    version = _version(session)
    today = utcnow().date()
    assert queries.pilot_start(session, version.id) is None
    at_least_30 = readiness.Criterion(metric="decisions", direction="at_least", threshold=30, min_n=0)
    readiness.register_plan(session, TEST_ACTOR, version_id=version.id, criteria=[at_least_30])  # a pilot needs one
    catalog.set_version_stage(session, TEST_ACTOR, version_id=version.id, stage="pilot")
    assert queries.pilot_start(session, version.id) == today
    ref, cur = reports.windows(session, version.id)
    assert ref == (today, today + timedelta(days=13)) and cur == (today - timedelta(days=13), today)


def test_without_pilot_the_reference_is_the_first_14_days_with_data(session):
    make_model(session)
    version = _version(session)
    first = utcnow().date() - timedelta(days=40)
    store_on_days(session, version, [first, first + timedelta(days=3)], [{"amount": 1}, {"amount": 2}])
    ref, _ = reports.windows(session, version.id)
    assert ref == (first, first + timedelta(days=13))
    assert reports.windows(session, version.id, (first, first))[0] == (first, first)
    backwards = (first, first - timedelta(days=1))
    assert reports.windows(session, version.id, backwards)[0] == backwards  # empty, as asked: not an error
    decades = (first - timedelta(days=20_000), first)
    assert reports.windows(session, version.id, decades)[0] == (first - timedelta(days=reports.MAX_WINDOW_DAYS), first)


def test_a_shifted_feature_drifts_and_the_others_do_not(session):
    make_model(session)
    version = _version(session)
    rng = random.Random(9)
    today = utcnow().date()
    old = [today - timedelta(days=40 + i % 14) for i in range(1400)]
    new = [today - timedelta(days=i % 14) for i in range(1400)]

    def draw(shift: float) -> dict:
        return {"amount": rng.lognormvariate(5 + shift, 1), "channel": rng.choice(["web", "phone"]), "n": rng.random()}

    store_on_days(session, version, old, [draw(0) for _ in old])
    store_on_days(session, version, new, [draw(0.5) for _ in new], start=2000)
    rows = {r.feature: r for r in reports.drift_rows(session, version_id=version.id)}
    assert rows["features.amount"].drifted and rows["features.amount"].method == "wasserstein"
    assert rows["features.amount"].statistic > 0.3
    assert not rows["features.channel"].drifted and rows["features.channel"].method == "jensenshannon"
    assert not rows["features.n"].drifted
    assert rows["features.amount"].n_reference == rows["features.amount"].n_current == 1400
    assert list(rows)[-2:] == ["confidence", "recommended_action"]
    # An explicit reference over the new days themselves: nothing drifts.
    same = reports.drift_rows(
        session, version_id=version.id, reference=(today - timedelta(days=13), today), current=None
    )
    assert not any(r.drifted for r in same)
    with pytest.raises(NotFound):
        reports.drift_rows(session, version_id=version.id + 99)


def test_drift_guardrail_fires_and_pauses(session):
    make_model(session)
    version = _version(session)
    rng = random.Random(2)
    today = utcnow().date()
    old = [today - timedelta(days=40 + i % 14) for i in range(1200)]
    new = [today - timedelta(days=i % 7) for i in range(1200)]
    store_on_days(session, version, old, [{"amount": rng.gauss(100, 10)} for _ in old])
    guardrail = guardrails.add_guardrail(
        session, TEST_ACTOR, version_id=version.id, kind="drift", window_size=14, threshold=0.1, auto_pause=True
    )
    assert guardrails.evaluate(session, [version.id], force=True) == []
    assert guardrail.last_value is None  # nothing in the last 14 days yet
    store_on_days(session, version, new, [{"amount": rng.gauss(100, 10)} for _ in new], start=5000)
    assert guardrails.evaluate(session, [version.id], force=True) == []
    assert guardrail.last_value is not None and guardrail.last_value < 0.1
    # Half the current window moves by 0.8 sd: its Wasserstein/std is about 0.4.
    store_on_days(session, version, new, [{"amount": rng.gauss(108, 10)} for _ in new], start=9000)
    raised = guardrails.evaluate(session, [version.id], force=True)
    assert len(raised) == 1 and "Amount" in raised[0].message and "paused" in raised[0].message
    assert session.get(ModelVersion, version.id).stage == "paused"
    assert session.scalar(select(func.count()).select_from(Alert).where(Alert.status == "open")) == 1
    assert guardrails.describe(guardrail).startswith("any input or output drifted")
    recorded = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("alert.%"))).all()
    assert recorded == ["alert.raised"]  # the audit trail records the breach like any other guardrail's


def test_drift_guardrail_needs_a_distance_threshold(session):
    make_model(session)
    with pytest.raises(ValidationFailed) as bad:
        guardrails.add_guardrail(
            session,
            TEST_ACTOR,
            version_id=_version(session).id,
            kind="drift",
            window_size=14,
            threshold=None,
            auto_pause=False,
        )
    assert "threshold" in bad.value.fields


def test_upgrading_past_0019_counts_the_recommendations_already_stored(scratch_url):
    engine = create_engine(scratch_url)
    migrate.upgrade(engine, "0018")  # before the histograms
    migrate.upgrade(engine)
    with Session(engine) as session:
        make_model(session)
        items = [RecommendationIn.model_validate(payload(n, features={"amount": n})) for n in range(5)]
        ingest.ingest_recommendations(session, TEST_ACTOR, items=items)
        kept = counts(session)
        session.execute(delete(DriftCount))  # as after upgrading a database that had recommendations
        session.commit()
    migrate.upgrade(engine)
    with Session(engine) as session:
        assert counts(session) == kept and sum(c[5] for c in kept if c[2] == "features.amount") == 5
    migrate.downgrade(engine, "0018")
    assert "drift_counts" not in inspect(engine).get_table_names()
    engine.dispose()


def test_the_workers_sweep_checks_drift_guardrails(session):
    make_model(session)
    version = _version(session)
    rng = random.Random(6)
    today = utcnow().date()
    old = [today - timedelta(days=40 + i % 14) for i in range(1100)]
    new = [today - timedelta(days=i % 14) for i in range(1100)]
    store_on_days(session, version, old, [{"channel": rng.choice(["web", "phone"])} for _ in old])
    store_on_days(session, version, new, [{"channel": rng.choice(["web", "web", "phone"])} for _ in new], start=3000)
    guardrails.add_guardrail(
        session, TEST_ACTOR, version_id=version.id, kind="drift", window_size=14, threshold=0.1, auto_pause=False
    )
    assert background.sweep_guardrails(session) == 1
    alert = session.scalars(select(Alert)).one()
    assert alert.message.startswith("v1: Channel drifted over the last 14 days (Jensen–Shannon distance")
    assert alert.value is not None and alert.value >= 0.1
    assert session.get(ModelVersion, version.id).stage == "production"  # this one only alerts
    assert background.sweep_guardrails(session) == 0  # the breach is already open
