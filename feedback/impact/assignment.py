"""Who is in which arm: hashed, stable assignment to an experiment's arms, and whether the AI is shown.

`ai_shown_for` is the one rule the review screen, the decision service and the template share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from feedback import bulk, permissions
from feedback.audit import Actor
from feedback.db import utcnow
from feedback.errors import NotFound, ValidationFailed
from feedback.models import (
    Experiment,
    Exposure,
    ModelVersion,
    Recommendation,
    RolloutSite,
)
from feedback.permissions import Action


def hashed_arm(salt: str, unit_id: str, ai_weight: float) -> str:
    """`ai_shown` for the first `ai_weight` of the hash range, else `control`: stable, uniform, salt-specific."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "ai_shown" if position < ai_weight else "control"


class Case(Protocol):
    """What assignment reads of a case: its id and its site (a Recommendation, or a case of imported history)."""

    @property
    def id(self) -> int: ...  # noqa: D102

    @property
    def site(self) -> str: ...  # noqa: D102


def unit_of(experiment: Experiment, rec: Case, reviewer_id: int) -> str:
    """The id of the unit this experiment assigns, for one case seen by one reviewer."""
    if experiment.unit == "case":
        return str(rec.id)
    if experiment.unit == "reviewer":
        return str(reviewer_id)
    return rec.site


def arm_of(experiment: Experiment, rec: Case, reviewer_id: int, now: datetime) -> str:
    """The arm a case is in when this reviewer sees it now."""
    if experiment.kind == "staggered":
        go_live = next((s.go_live_at for s in experiment.sites if s.site == rec.site), None)
        return "ai_shown" if go_live is not None and go_live <= now else "control"
    return hashed_arm(experiment.salt, unit_of(experiment, rec, reviewer_id), experiment.ai_weight)


@dataclass(frozen=True)
class Assignment:
    """Which arm of which running experiment a case is in for a reviewer."""

    experiment_id: int
    experiment_name: str
    unit_id: str
    arm: str

    @property
    def hides_ai(self) -> bool:
        """Whether this arm decides without the AI (the control group, or a site not yet live)."""
        return self.arm == "control"


def ai_shown_for(version: ModelVersion, assignment: Assignment | None) -> bool:
    """Whether the reviewer sees the AI's recommendation: its version's stage shows it, and no arm hides it.

    The decision service stores this as `ai_shown`, and the review screen renders from it: the
    one rule, so the experiment's data always records what the reviewer really saw.
    """
    return version.ai_visible and not (assignment is not None and assignment.hides_ai)


# A web request reads the running experiment for the exposure, the decision and the page it
# renders. With `remember_running_experiments(session)` it reads it once per model; any flush that
# touches an experiment forgets the answers.
_MEMO = "running_experiments"


def remember_running_experiments(session: Session) -> None:
    """Read each model's running experiment once for the rest of this session (a request's)."""
    session.info[_MEMO] = {}


@event.listens_for(Session, "before_flush")
def _forget_on_change(session: Session, _context: Any, _instances: Any) -> None:
    memo = session.info.get(_MEMO)
    if memo and any(isinstance(o, (Experiment, RolloutSite)) for o in (*session.new, *session.dirty, *session.deleted)):
        memo.clear()


def running_experiment(session: Session, model_id: int) -> Experiment | None:
    """The model's running experiment, if any (the database allows at most one)."""
    memo: dict[int, Experiment | None] | None = session.info.get(_MEMO)
    if memo is not None and model_id in memo:
        return memo[model_id]
    experiment = session.scalars(
        select(Experiment)
        .where(Experiment.model_id == model_id, Experiment.status == "running")
        .options(selectinload(Experiment.sites))
    ).first()
    if memo is not None:
        memo[model_id] = experiment
    return experiment


def assignment_for(
    session: Session, rec: Recommendation, reviewer_id: int, now: datetime | None = None
) -> Assignment | None:
    """The arm of the running experiment on this case's model, or None when nothing is running."""
    experiment = running_experiment(session, rec.model_id)
    if experiment is None:
        return None
    now = now or utcnow()
    return Assignment(
        experiment.id, experiment.name, unit_of(experiment, rec, reviewer_id), arm_of(experiment, rec, reviewer_id, now)
    )


def record_exposure(
    session: Session, assignment: Assignment, recommendation_id: int, reviewer_id: int, now: datetime
) -> None:
    """Note, once per case and reviewer, the arm that was shown (in the caller's transaction)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Exposure)
        .values(
            experiment_id=assignment.experiment_id,
            recommendation_id=recommendation_id,
            reviewer_id=reviewer_id,
            unit_id=assignment.unit_id,
            arm=assignment.arm,
            exposed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["experiment_id", "recommendation_id", "reviewer_id"])
    )


def expose(session: Session, rec: Recommendation, reviewer_id: int, now: datetime) -> Assignment | None:
    """Work out the arm for a case a reviewer is about to see and record the exposure."""
    assignment = assignment_for(session, rec, reviewer_id, now)
    if assignment is not None:
        record_exposure(session, assignment, rec.id, reviewer_id, now)
    return assignment


@dataclass(frozen=True)
class Seen:
    """A case of imported history that a reviewer saw, and when."""

    id: int  # the recommendation's
    site: str
    reviewer_id: int
    at: datetime


def record_history(session: Session, actor: Actor, *, experiment_id: int, seen: Sequence[Seen]) -> None:
    """Exposures of imported history (the demo's), in bulk; the caller commits.

    Each unit and arm is worked out as `expose` works it out for a case on screen, so the rows
    are the ones the review screen would have written. Like `record_exposure`, a case already
    exposed to that reviewer (in this batch or before) is noted once; a case of another model is
    refused, naming it.
    """
    permissions.require(actor, Action.RUN_IMPACT, session=session)
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id}")
    ids = list({case.id for case in seen})
    of_model = select(Recommendation.id, Recommendation.model_id).where(Recommendation.id.in_(ids))
    models: dict[int, int] = {rec_id: model_id for rec_id, model_id in session.execute(of_model)}
    wrong = {
        f"[{i}].id": f"case {case.id} is not a case of this experiment's model"
        for i, case in enumerate(seen)
        if models.get(case.id) != experiment.model_id
    }
    if wrong:
        raise ValidationFailed("exposures name cases outside the experiment; nothing was stored", wrong)
    already = select(Exposure.recommendation_id, Exposure.reviewer_id).where(
        Exposure.experiment_id == experiment.id, Exposure.recommendation_id.in_(ids)
    )
    stored: set[tuple[int, int]] = {(rec_id, reviewer_id) for rec_id, reviewer_id in session.execute(already)}
    fresh = []
    for case in seen:
        if (case.id, case.reviewer_id) not in stored:
            stored.add((case.id, case.reviewer_id))
            fresh.append(case)
    rows = [
        {
            "experiment_id": experiment.id,
            "recommendation_id": case.id,
            "reviewer_id": case.reviewer_id,
            "unit_id": unit_of(experiment, case, case.reviewer_id),
            "arm": arm_of(experiment, case, case.reviewer_id, case.at),
            "exposed_at": case.at,
        }
        for case in fresh
    ]
    bulk.insert_returning_ids(session, Exposure, rows)
