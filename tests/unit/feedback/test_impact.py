"""Impact panels and analysis runs: CSV validation, SQL panels against pandas, runs end to end."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from analytics import staggered
from feedback.db import utcnow
from feedback.errors import PermissionDenied, ValidationFailed
from feedback.impact import experiments
from feedback.impact import panels as impact_panels
from feedback.impact import runs as impact_runs
from feedback.models import AnalysisRun, Decision, ImpactPanel, Model, PanelRow, Recommendation
from feedback.review import decisions
from tests.factories import make_case, make_model, make_user
from tests.helpers import GOOD, eventually_treated_panel, simulated_panel


def test_a_good_csv_is_read_with_cohorts_and_covariates():
    frame, covariates = impact_panels.parse_panel_csv(GOOD)
    assert covariates == ["size"]
    assert frame["value"].tolist() == [10, 11, 9, 9.5] and frame["treated"].tolist() == [False, True, False, False]
    dated, _ = impact_panels.parse_panel_csv(
        b"unit,period,value,treated\nx,2026-01-05,1,0\nx,2026-01-12,2,1\ny,2026-01-05,1,0\ny,2026-01-12,1,0\n"
    )
    assert dated["period"].tolist() == [1, 2, 1, 2] and dated["label"].iloc[1] == "2026-01-12"


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b"", "file", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "file", "binary"),
        (b"\xff\xfe\x00u", "file", "binary"),
        (b"who,when,value\na,1,2\n", "columns", "missing unit, period, treated"),
        (b"unit,period,value,treated\na,1,ten,0\na,2,11,1\n", "value", "line(s) 2"),
        (b"unit,period,value,treated\na,1,1,0\na,1,2,0\nb,1,1,1\n", "rows", "twice on line(s) 2, 3"),
        (b"unit,period,value,treated\na,1,1,0\na,2,2,1\na,3,2,0\nb,1,1,0\nb,2,1,0\nb,3,1,0\n", "treated", "unit a"),
        (b"unit,period,value,treated\na,1,1,maybe\n", "treated", "0 or 1"),
        (b"unit,period,value,treated\na,1,1,0\na,soon,1,1\n", "period", "line(s) 3"),
        (b"unit,period,value,treated,size\na,1,1,0,big\na,2,1,1,3\n", "size", "line(s) 2"),
    ],
)
def test_malformed_csv_names_the_problem(raw, field, words):
    with pytest.raises(ValidationFailed) as err:
        impact_panels.parse_panel_csv(raw)
    assert field in err.value.fields
    assert words in err.value.fields[field]


def test_a_bad_upload_stores_nothing(session):
    analyst = make_user(session, "analyst")
    with pytest.raises(ValidationFailed):
        impact_panels.upload_panel(session, analyst, name="bad", raw=b"unit,period,value,treated\na,1,1,0\na,1,1,0\n")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ImpactPanel)) == 0
    assert session.scalar(select(func.count()).select_from(PanelRow)) == 0
    with pytest.raises(PermissionDenied):
        impact_panels.upload_panel(session, make_user(session), name="x", raw=GOOD)
    panel = impact_panels.upload_panel(session, analyst, name="good", raw=GOOD)
    frame = impact_panels.panel_frame(session, panel)
    assert frame.set_index("unit")["cohort"].to_dict() == {"a": 2, "b": 0}
    assert frame["size"].tolist() == [3, 3, 5, 5]


def test_a_staggered_run_stores_the_estimator_results(session):
    analyst = make_user(session, "analyst")
    frame = simulated_panel(np.random.default_rng(5))
    panel = impact_panels.upload_panel(session, analyst, name="sim", raw=frame.to_csv(index=False).encode())
    run = impact_runs.queue_panel_analysis(session, analyst, panel_id=panel.id, draws=199)
    impact_runs.execute_run(session, run.id)
    session.refresh(run)
    assert run.status == "done" and run.progress == 1.0, run.message
    result = run.result
    # Independent check: the same estimator called directly on the same data.
    first = frame[frame.treated == 1].groupby("unit")["period"].min()
    with_cohort = frame.assign(cohort=frame["unit"].map(first).fillna(0).astype(int))
    direct = staggered.att_gt(with_cohort, "value", "unit", "period", "cohort", control="not_yet").aggregate("simple")
    assert result["simple"]["att"] == pytest.approx(direct.overall_att, abs=1e-9)
    assert result["simple"]["ci_low"] < -3.0 < result["simple"]["ci_high"]
    rows = result["event_study"]["rows"]
    assert all(r["band_low"] <= r["ci_low"] and r["ci_high"] <= r["band_high"] for r in rows)
    assert result["pretest"]["uniform_p_value"] > 0.001
    assert {"simple", "group", "dynamic", "calendar"} == set(result["aggregates"])


def test_a_run_stores_what_the_estimator_dropped_as_warnings(session):
    analyst = make_user(session, "analyst")
    frame = eventually_treated_panel(np.random.default_rng(5))
    # Weekly periods written as dates: the warnings name them as the analyst wrote them.
    frame["period"] = (pd.Timestamp("2026-01-05") + pd.to_timedelta(7 * (frame["period"] - 1), unit="D")).dt.date
    panel = impact_panels.upload_panel(session, analyst, name="all treated", raw=frame.to_csv(index=False).encode())
    run = impact_runs.queue_panel_analysis(session, analyst, panel_id=panel.id, draws=99)
    impact_runs.execute_run(session, run.id)
    session.refresh(run)
    assert run.status == "done", run.message
    # The last cohort (period 7) serves only as the comparison: said so, and every cohort effect is a number.
    notes = " | ".join(run.result["warnings"])
    assert "no unit is never treated: the last cohort (2026-02-16) serves only as the comparison" in notes
    assert "periods 2026-02-16, 2026-02-23 (from its go-live on) are dropped" in notes
    groups = run.result["aggregates"]["group"]
    assert [row["key"] for row in groups["table"]] == [4, 6] and groups["overall_att"] is not None


def test_a_failing_run_is_stored_as_failed(session):
    analyst = make_user(session, "analyst")
    # Every unit treated in period 1: no comparison units, so the estimator refuses.
    raw = b"unit,period,value,treated\na,1,1,0\na,2,2,1\nb,1,1,0\nb,2,2,1\n"
    panel = impact_panels.upload_panel(session, analyst, name="all treated", raw=raw)
    run = impact_runs.queue_panel_analysis(session, analyst, panel_id=panel.id, control="never", method="dr")
    impact_runs.execute_run(session, run.id)
    session.refresh(run)
    assert run.status == "failed" and "never-treated" in run.message


def test_platform_panel_matches_pandas_on_the_raw_decisions(session):
    make_model(session)
    analyst, reviewers = make_user(session, "analyst"), [make_user(session) for _ in range(2)]
    rng = np.random.default_rng(11)
    # From midnight, so every decision (08:00-16:05) falls on its own calendar day whatever the time now.
    start = (utcnow() - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    model_id = session.scalar(select(Model.id))
    exp = experiments.create_experiment(
        session,
        analyst,
        key="roll",
        name="Roll",
        model_id=model_id,
        kind="staggered",
        sites=[experiments.GoLive("Leeds", start + timedelta(days=14)), experiments.GoLive("York")],
    )
    n = 0
    for day in range(0, 28):
        for site in ("Leeds", "York"):
            for _ in range(3):
                n += 1
                rec = make_case(session, n, site=site)
                reviewer = reviewers[n % 2]
                decision = decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="accept")
                opened = start + timedelta(days=day, hours=float(rng.uniform(8, 16)))
                decision.opened_at, decision.decided_at = opened, opened + timedelta(seconds=float(rng.uniform(5, 300)))
    session.commit()
    frame = impact_panels.platform_frame(session, model_id, "site", "day")
    raw = pd.DataFrame(
        session.execute(
            select(Recommendation.site, Decision.opened_at, Decision.decided_at).join(Decision.recommendation)
        ).all(),
        columns=["site", "opened", "decided"],
    )
    raw["day"] = raw["decided"].dt.strftime("%Y-%m-%d")
    raw["seconds"] = (raw["decided"] - raw["opened"]).dt.total_seconds()
    expected = raw.groupby(["site", "day"])["seconds"].median()
    got = frame.set_index(["site", "period"])["median_handling_seconds"]
    assert len(got) == len(expected) == 56
    assert np.allclose(got.sort_index().to_numpy(), expected.sort_index().to_numpy(), atol=1e-3)
    panel, dropped = impact_panels.build_platform_panel(
        session, analyst, experiment_id=exp.id, metric="median_handling_seconds", unit="site", period="day"
    )
    assert dropped == []
    rows = impact_panels.panel_frame(session, panel)
    leeds = rows[rows.unit == "Leeds"]
    first_live = (start + timedelta(days=14)).date().isoformat()
    assert leeds.loc[leeds.treated, "label"].min() == first_live
    assert not rows.loc[rows.unit == "York", "treated"].any()
    assert session.scalar(select(func.count()).select_from(AnalysisRun)) == 0


def test_a_run_whose_worker_died_shows_as_interrupted(session):
    analyst = make_user(session, "analyst")
    panel = impact_panels.upload_panel(session, analyst, name="p", raw=GOOD)
    run = impact_runs.queue_panel_analysis(session, analyst, panel_id=panel.id, control="never", method="dr")
    assert not impact_runs.is_stale(run)
    later = run.updated_at + impact_runs.STALE_AFTER + timedelta(seconds=1)
    assert impact_runs.is_stale(run, later)
    impact_runs.execute_run(session, run.id)
    assert not impact_runs.is_stale(run, later + timedelta(days=1))  # finished runs are never stale
    with pytest.raises(ValidationFailed) as err:
        impact_runs.queue_panel_analysis(session, analyst, panel_id=panel.id, control="x", method="y", draws=5)
    assert set(err.value.fields) == {"control", "method", "draws"}
