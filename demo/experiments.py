"""The demo's experiments: an A/B test of showing the AI, and a staggered rollout across the sites."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from demo.catalog import SEED_ACTOR
from feedback.errors import ValidationFailed
from feedback.impact import assignment, experiments
from feedback.impact import panels as impact_panels
from feedback.impact import runs as impact_runs
from feedback.impact.assignment import Seen, hashed_arm
from feedback.models import Experiment, Model, User

# The fraud model's AI is rolled out site by site; where it is shown, reviewers handle a case
# in this fraction of the time (the true effect the impact page should recover: -15%).
AI_HANDLING_FACTOR = 0.85


ROLLOUT_SHARES = {"Leeds": 0.25, "Manchester": 0.25, "Bristol": 0.5, "Glasgow": 0.5, "Cardiff": 0.75, "Belfast": None}


class AbTest:
    """A finished A/B test on the claims model: half the reviewers (by hash) decided unaided for three weeks."""

    def __init__(self, experiment_id: int, salt: str, window: tuple[datetime, datetime]) -> None:
        self.experiment_id, self.salt, self.window = experiment_id, salt, window

    def arm(self, reviewer_id: int) -> str:
        """The arm a reviewer is in, by the experiment's own hash."""
        return hashed_arm(self.salt, str(reviewer_id), 0.5)

    def record_exposures(self, session: Session, exposed: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """One exposure per stored decision (cases the ingest rules routed away were never shown)."""
        seen = [
            Seen(dec["recommendation_id"], rec["site"], dec["reviewer_id"], dec["opened_at"])
            for rec, dec in exposed
            if "recommendation_id" in dec
        ]
        assignment.record_history(session, SEED_ACTOR, experiment_id=self.experiment_id, seen=seen)
        session.commit()

    def finish(self, session: Session, progress: Callable[[str], None]) -> None:
        """Mark the test as run and stopped, and analyse it."""
        experiment = session.get(Experiment, self.experiment_id)
        assert experiment is not None
        analyst = session.scalars(select(User).where(User.role == "analyst")).one()
        experiments.start_experiment(session, analyst, experiment_id=experiment.id)
        experiments.stop_experiment(session, analyst, experiment_id=experiment.id)
        experiment.started_at, experiment.stopped_at = self.window  # when it ran, in the story
        session.commit()
        run = impact_runs.queue_ab_analysis(session, analyst, experiment_id=experiment.id)
        impact_runs.execute_run(session, run.id)
        handling = next((m for m in (run.result or {}).get("metrics", []) if m["metric"] == "handling_seconds"), None)
        if handling and handling.get("effect"):
            effect = handling["effect"]
            progress(
                f"A/B test: handling time {effect['lift']:+.1%} with the AI shown "
                f"(95% CI {effect['lift_ci_low']:+.1%} to {effect['lift_ci_high']:+.1%}; true effect "
                f"{AI_HANDLING_FACTOR - 1:+.0%})"
            )
        else:
            progress(f"A/B analysis: {run.status} {run.message}")


def ab_experiment(session: Session, claims: Model, now: datetime, days: int) -> AbTest:
    """Create the claims A/B test (by reviewer) over three weeks ending 19 days ago."""
    analyst = session.scalars(select(User).where(User.role == "analyst")).one()
    experiment = experiments.create_experiment(
        session,
        analyst,
        key="claims-ai-ab",
        name="Claims AI shown vs hidden, by reviewer",
        model_id=claims.id,
        kind="ab",
        unit="reviewer",
        ai_weight=0.5,
        hypothesis="Reviewers who see the claims AI decide faster and no less accurately.",
    )
    experiment.salt = "demo-claims-ab"  # a fixed salt keeps the demo reproducible
    session.commit()
    end = (now - timedelta(days=min(19, days // 4))).replace(hour=0, minute=0)
    start = end - timedelta(days=min(21, days // 4))
    return AbTest(experiment.id, experiment.salt, (start, end))


def rollout_schedule(now: datetime, days: int) -> dict[str, datetime | None]:
    """Go-live Mondays at a quarter, half and three quarters of the history; Belfast never (comparison)."""
    first = (now - timedelta(days=days)).replace(hour=0, minute=0)
    first_monday = first + timedelta(days=(7 - first.weekday()) % 7)
    weeks = max(days // 7, 4)
    return {
        site: None if share is None else first_monday + timedelta(weeks=max(round(weeks * share), 1))
        for site, share in ROLLOUT_SHARES.items()
    }


def rollout_experiment(
    session: Session,
    fraud: Model,
    rollout: dict[str, datetime | None],
    started: datetime,
    progress: Callable[[str], None],
) -> None:
    """The fraud model's staggered rollout, a weekly panel of handling times, and its analysis."""
    analyst = session.scalars(select(User).where(User.role == "analyst")).one()
    experiment = experiments.create_experiment(
        session,
        analyst,
        key="fraud-rollout",
        name="Fraud AI rollout by site",
        model_id=fraud.id,
        kind="staggered",
        hypothesis="Showing the fraud AI's recommendation cuts handling time without hurting accuracy.",
        sites=[experiments.GoLive(site, when) for site, when in rollout.items()],
    )
    experiments.start_experiment(session, analyst, experiment_id=experiment.id)
    experiment.started_at = started
    session.commit()
    try:
        panel, _ = impact_panels.build_platform_panel(
            session, analyst, experiment_id=experiment.id, metric="median_handling_seconds", unit="site_reviewer"
        )
    except ValidationFailed as exc:
        progress(f"rollout: no panel ({exc.fields})")
        return
    run = impact_runs.queue_panel_analysis(session, analyst, panel_id=panel.id, draws=999)
    impact_runs.execute_run(session, run.id)
    result = run.result or {}
    simple = result.get("simple") or {}
    if simple.get("relative") is not None:
        progress(
            f"rollout: handling time {simple['relative']:+.1%} where the AI was switched on "
            f"(95% CI {simple['relative_ci_low']:+.1%} to {simple['relative_ci_high']:+.1%}; true effect "
            f"{AI_HANDLING_FACTOR - 1:+.0%})"
        )
    else:
        progress(f"rollout analysis: {run.status} {run.message}")
