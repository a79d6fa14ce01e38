"""The impact pages: experiments, the review screen under an experiment, uploads, background analyses."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from analytics import ab
from feedback.impact import experiments
from feedback.impact import queries as impact_queries
from feedback.impact.assignment import hashed_arm
from feedback.models import AnalysisRun, AuditEvent, ImpactPanel, Model
from feedback.review import claims, decisions
from tests.factories import login, make_case, make_model, make_user
from tests.helpers import eventually_treated_panel, simulated_panel


def wait_for_run(client, run_id, timeout=30.0):
    """Poll the run page as htmx does until the background worker finishes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(f"/impact/analyses/{run_id}", headers={"HX-Request": "true"})
        if 'hx-trigger="every 1s"' not in page.text:
            return page
        time.sleep(0.2)
    raise AssertionError("the analysis did not finish")


def test_roles_on_the_impact_pages(client, session):
    make_model(session)
    login(client, make_user(session))
    assert client.get("/impact").status_code == 403
    client.post("/logout")
    login(client, make_user(session, "model_owner"))
    assert client.get("/impact").status_code == 200
    assert client.post("/impact/experiments", data={"key": "x"}).status_code == 403


def test_a_rollout_form_skips_blank_site_rows_on_create_and_edit(client, session):
    make_model(session)
    login(client, make_user(session, "analyst"))
    model_id = session.scalar(select(Model.id))
    form = {"key": "roll", "name": "Roll", "model_id": model_id, "kind": "staggered"}
    rows = {"site": ["Leeds", "", "  ", "York"], "go_live": ["2027-01-04", "2027-02-01", "", ""]}
    made = client.post("/impact/experiments", data={**form, **rows})
    assert made.status_code == 302, made.text
    exp_id = int(made.headers["Location"].rsplit("/", 1)[1])
    session.rollback()
    sites = {s.site: s.go_live_at for s in impact_queries.get_experiment(session, exp_id).sites}
    assert set(sites) == {"Leeds", "York"} and sites["York"] is None
    edited = client.post(
        f"/impact/experiments/{exp_id}", data={"name": "Roll", "site": ["", "York"], "go_live": ["", "2027-03-01"]}
    )
    assert edited.status_code == 200 and "Saved." in edited.text
    only_blank = client.post(f"/impact/experiments/{exp_id}", data={"name": "Roll", "site": [""], "go_live": [""]})
    assert only_blank.status_code == 422 and "list the sites in the rollout" in only_blank.text


def test_analyst_creates_and_starts_an_ab_test_and_control_cases_hide_the_ai(client, session):
    make_model(session)
    analyst = make_user(session, "analyst")
    login(client, analyst)
    model_id = session.scalar(select(Model.id))
    bad = client.post("/impact/experiments", data={"key": "Bad key", "name": "", "model_id": model_id, "kind": "ab"})
    assert bad.status_code == 422 and "lower-case letters" in bad.text and "give the experiment a name" in bad.text
    made = client.post(
        "/impact/experiments",
        data={
            "key": "ai-on-off",
            "name": "AI on or off",
            "model_id": model_id,
            "kind": "ab",
            "unit": "case",
            "ai_weight": "0.5",
        },
    )
    assert made.status_code == 302
    exp_id = int(made.headers["Location"].rsplit("/", 1)[1])
    started = client.post(f"/impact/experiments/{exp_id}/start")
    assert started.status_code == 200 and "Started" in started.text
    session.rollback()  # see what the requests committed
    assert session.scalar(select(func.count()).where(AuditEvent.action.like("experiment.%"))) == 2

    reviewer = make_user(session)
    client.post("/logout")
    login(client, reviewer)
    session.rollback()
    salt = impact_queries.get_experiment(session, exp_id).salt
    seen = set()
    for n in range(1, 13):
        rec = make_case(session, n)
        rec_id = rec.id
        session.rollback()  # end the read snapshot before the request writes
        page = client.post(f"/review/{rec_id}", follow_redirects=True)
        arm = hashed_arm(salt, str(rec_id), 0.5)
        seen.add(arm)
        if arm == "control":
            assert (
                "control group" in page.text and "AI recommends" not in page.text and "Routine claim" not in page.text
            )
        else:
            assert "AI recommends" in page.text and "Routine claim" in page.text
    assert seen == {"ai_shown", "control"}


def test_upload_errors_are_listed_and_nothing_is_stored(client, session):
    login(client, make_user(session, "analyst"))
    bad = io.BytesIO(b"unit,period,value,treated\na,1,1,0\na,2,x,1\na,3,1,0\n")
    page = client.post(
        "/impact/panels/upload", data={"name": "bad", "file": (bad, "bad.csv")}, content_type="multipart/form-data"
    )
    assert page.status_code == 422
    assert "Nothing was stored" in page.text and "not a number on line(s) 3" in page.text
    assert session.scalar(select(func.count()).select_from(ImpactPanel)) == 0
    missing = client.post("/impact/panels/upload", data={"name": "none"}, content_type="multipart/form-data")
    assert missing.status_code == 422 and "choose a CSV file" in missing.text


def test_staggered_analysis_runs_in_the_background_and_downloads_as_csv(client, session):
    login(client, make_user(session, "analyst"))
    frame = simulated_panel(np.random.default_rng(8))
    raw = io.BytesIO(frame.to_csv(index=False).encode())
    uploaded = client.post(
        "/impact/panels/upload", data={"name": "sim", "file": (raw, "sim.csv")}, content_type="multipart/form-data"
    )
    assert uploaded.status_code == 302
    panel_url = uploaded.headers["Location"]
    assert "Cohorts" in client.get(panel_url).text
    queued = client.post(f"{panel_url}/analyses", data={"control": "not_yet", "method": "dr", "draws": "199"})
    assert queued.status_code == 302  # answered at once; the work happens in the background
    run_id = int(queued.headers["Location"].rsplit("/", 1)[1])
    done = wait_for_run(client, run_id)
    assert "Event study" in done.text and "Two-way fixed effects" in done.text and "uniform band" in done.text
    session.rollback()
    run = session.get(AnalysisRun, run_id)
    assert run.status == "done"
    event = pd.read_csv(io.StringIO(client.get(f"/impact/analyses/{run_id}.csv?table=event_study").text))
    assert list(event.columns)[:3] == ["event_time", "att", "se"]
    assert np.allclose(event["att"], [r["att"] for r in run.result["event_study"]["rows"]])
    cells = pd.read_csv(io.StringIO(client.get(f"/impact/analyses/{run_id}.csv?table=cells").text))
    assert {"cohort", "time", "att", "se", "band_low", "band_high"} <= set(cells.columns)
    panel_csv = pd.read_csv(io.StringIO(client.get(f"{panel_url}.csv").text))
    assert len(panel_csv) == len(frame) and set(panel_csv.columns) == {"unit", "period", "value", "treated"}
    assert client.get(f"/impact/analyses/{run_id}.csv?table=nope").status_code == 422


def test_the_analysis_page_shows_the_estimators_warnings(client, session):
    login(client, make_user(session, "analyst"))
    raw = io.BytesIO(eventually_treated_panel(np.random.default_rng(8)).to_csv(index=False).encode())
    uploaded = client.post(
        "/impact/panels/upload", data={"name": "all", "file": (raw, "all.csv")}, content_type="multipart/form-data"
    )
    queued = client.post(f"{uploaded.headers['Location']}/analyses", data={"control": "not_yet", "method": "dr"})
    run_id = int(queued.headers["Location"].rsplit("/", 1)[1])
    page = wait_for_run(client, run_id)
    assert (
        'role="note">Caution: no unit is never treated: the last cohort (7) serves only as the comparison' in page.text
    )
    assert client.get(f"/impact/analyses/{run_id}").text.count("Caution: no unit is never treated") == 1


def test_ab_analysis_shows_the_sample_ratio_check(client, session):
    make_model(session)
    analyst = make_user(session, "analyst")
    model_id = session.scalar(select(Model.id))
    exp = experiments.create_experiment(
        session, analyst, key="ab", name="AB", model_id=model_id, kind="ab", unit="reviewer"
    )
    experiments.start_experiment(session, analyst, experiment_id=exp.id)
    # Eight or more reviewers, at least two in each arm (the arms come from hashing with a random salt).
    reviewers = [make_user(session) for _ in range(8)]
    while (
        min(sum(hashed_arm(exp.salt, str(r.id), 0.5) == arm for r in reviewers) for arm in ("ai_shown", "control")) < 2
    ):
        reviewers.append(make_user(session))
    n = 0
    for reviewer in reviewers:
        for _ in range(4):
            n += 1
            rec = make_case(session, n)
            claims.claim_case(session, reviewer, recommendation_id=rec.id)
            decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="accept", final_action="pay")
    login(client, analyst)
    page = client.get(f"/impact/experiments/{exp.id}")
    assert "Sample ratio" in page.text
    queued = client.post(f"/impact/experiments/{exp.id}/analyses")
    run_id = int(queued.headers["Location"].rsplit("/", 1)[1])
    done = wait_for_run(client, run_id)
    assert "Sample ratio" in done.text and "clustered by reviewer" in done.text
    session.rollback()
    result = session.get(AnalysisRun, run_id).result
    arms = {arm: sum(hashed_arm(exp.salt, str(r.id), 0.5) == arm for r in reviewers) for arm in ("ai_shown", "control")}
    assert result["srm"]["observed"] == arms
    assert result["decisions"] == 4 * len(reviewers)
    # Each reviewer is a cluster, far fewer than 50: the page says the wild cluster bootstrap gave the intervals.
    said = f"wild cluster bootstrap over {len(reviewers)} clusters"
    methods = {m["effect"]["method"] for m in result["metrics"] if m.get("effect")}
    assert methods and all(said in m for m in methods)
    assert said in done.text


def test_the_planner_gives_the_mde_and_the_sample_size(client, session):
    login(client, make_user(session, "model_owner"))
    page = client.get("/impact/plan?sd=10&n_total=2000&treatment_share=0.3")
    assert page.status_code == 200
    mde = ab.minimum_detectable_effect(10, 2000, treatment_share=0.3).minimum_detectable_effect
    assert f"{mde:.3g}" in page.text  # three significant digits, as every number on a page
    sized = client.get("/impact/plan?baseline_rate=0.2&effect=0.02", headers={"HX-Request": "true"})
    needed = ab.sample_size(ab.proportion_sd(0.2), 0.02).n_total
    assert sized.status_code == 200 and f"{needed:,.0f}" in sized.text and "<html" not in sized.text
    bad = client.get("/impact/plan?sd=ten&n_total=-5")
    assert bad.status_code == 422 and "sd</strong>: must be a number" in bad.text and "n_total" in bad.text
