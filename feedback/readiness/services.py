"""Register and change readiness plans. A plan is never edited: a change is a new plan version with a reason."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.errors import Conflict, NotFound, Problems, ValidationFailed
from feedback.models import Experiment, Guardrail, ModelVersion
from feedback.models.readiness import DIRECTIONS, READINESS_METRICS, ReadinessPlan
from feedback.params import MAX_ID
from feedback.permissions import Action
from feedback.readiness import queries, reports

MAX_CRITERIA = 20
MAX_MIN_N = 10_000_000
MAX_SECONDS = 30 * 86400
EXPERIMENT_METRICS = ("override", "correct", "handling_seconds")
# Which ways each metric may be judged: a count of decisions only upwards, drifted features only downwards.
ALLOWED_DIRECTIONS = {"decisions": ("at_least",), "drift": ("at_most",)}
WHOLE_THRESHOLDS = ("decisions", "drift")
READINESS_GUARDRAIL = "readiness"


@dataclass(frozen=True)
class Criterion:
    """One criterion of a plan, typed; `threshold` None is a form's blank box.

    A share is 0 to 1; a count of decisions or of drifted features is whole; an experiment_effect
    criterion names its experiment and which of its metrics it judges.
    """

    metric: str
    direction: str
    threshold: float | None
    min_n: int = 0
    experiment_id: int | None = None
    experiment_metric: str | None = None

    def stored(self) -> dict[str, Any]:
        """The criterion as the plan stores it (counts as whole numbers, experiment fields only where used)."""
        threshold = self.threshold
        if self.metric in WHOLE_THRESHOLDS and threshold is not None and float(threshold).is_integer():
            threshold = int(threshold)
        row: dict[str, Any] = {"metric": self.metric, "direction": self.direction, "threshold": threshold}
        row["min_n"] = self.min_n
        if self.metric == "experiment_effect":
            row |= {"experiment_id": self.experiment_id, "experiment_metric": self.experiment_metric}
        return row


def checked_criteria(session: Session, model_id: int, criteria: Sequence[Criterion]) -> list[dict[str, Any]]:
    """The criteria as stored, or an error naming each bad field (`criteria[2].threshold`).

    What a criterion's own fields break is a 422 (the API's schema states those rules too); an
    experiment that does not exist a 404, one of another model a 409; a criterion repeated a 409.
    """
    if not 1 <= len(criteria) <= MAX_CRITERIA:
        raise ValidationFailed("a plan needs criteria", {"criteria": f"must hold 1 to {MAX_CRITERIA} criteria"})
    problems = Problems()
    seen = set()
    for i, criterion in enumerate(criteria):
        at = f"criteria[{i}]"
        _check(session, model_id, criterion, at, problems)
        key = (criterion.metric, criterion.experiment_id, criterion.experiment_metric)
        if key in seen and f"{at}.metric" not in problems.fields:
            problems.repeated[f"{at}.metric"] = "repeats another criterion of this plan"
        seen.add(key)
    problems.raise_any("the readiness plan has invalid fields")
    return [criterion.stored() for criterion in criteria]


def _check(session: Session, model_id: int, criterion: Criterion, at: str, problems: Problems) -> None:
    """Add what is wrong with one criterion to `problems`."""
    fields = problems.invalid
    metric = criterion.metric
    if metric not in READINESS_METRICS:
        fields[f"{at}.metric"] = f"must be one of {', '.join(READINESS_METRICS)}"
    allowed = ALLOWED_DIRECTIONS.get(metric, DIRECTIONS)
    if criterion.direction not in allowed:
        fields[f"{at}.direction"] = f"must be {' or '.join(allowed)}" + (f" for {metric}" if metric else "")
    problem = _threshold_problem(metric, criterion.threshold)
    if problem:
        fields[f"{at}.threshold"] = problem
    if not 0 <= criterion.min_n <= MAX_MIN_N:
        fields[f"{at}.min_n"] = f"must be a whole number from 0 to {MAX_MIN_N}"
    if metric != "experiment_effect":
        for extra in ("experiment_id", "experiment_metric"):
            if getattr(criterion, extra) is not None:
                fields[f"{at}.{extra}"] = "only an experiment_effect criterion names an experiment"
        return
    experiment_id = criterion.experiment_id
    if experiment_id is None or not 0 < experiment_id <= MAX_ID:
        fields[f"{at}.experiment_id"] = "must name an experiment on this model"
    else:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None:
            problems.disallowed[f"{at}.experiment_id"] = "names no experiment"  # a rule on stored rows: 409
        elif experiment.model_id != model_id:
            problems.disallowed[f"{at}.experiment_id"] = "is an experiment on another model"
    if criterion.experiment_metric not in EXPERIMENT_METRICS:
        fields[f"{at}.experiment_metric"] = f"must be one of {', '.join(EXPERIMENT_METRICS)}"


def _threshold_problem(metric: str, threshold: float | None) -> str | None:
    """Why the threshold does not fit the metric (None when it does)."""
    if threshold is None or not math.isfinite(threshold):
        return "must be a number"
    if metric in ("override_rate", "accuracy", "sla_attainment") and not 0 <= threshold <= 1:
        return "must be a share between 0 and 1"
    if metric == "decisions" and (threshold != int(threshold) or not 1 <= threshold <= MAX_MIN_N):
        return f"must be a whole number of decisions from 1 to {MAX_MIN_N}"
    if metric == "drift" and (threshold != int(threshold) or not 0 <= threshold <= 1000):
        return "must be a whole number of features from 0 to 1000"
    if metric == "median_seconds_to_decide" and not 0 < threshold <= MAX_SECONDS:
        return f"must be seconds above 0 and at most {MAX_SECONDS}"
    return None


def _version(session: Session, actor: Actor, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"no model version {version_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=version.model_id)
    return version


def register_plan(
    session: Session, actor: Actor, *, version_id: int, criteria: Sequence[Criterion], reason: str = ""
) -> ReadinessPlan:
    """Register a version's first readiness plan, and the guardrail that pauses the version on a kill."""
    version = _version(session, actor, version_id)
    if queries.latest_plan(session, version.id) is not None:
        raise Conflict(
            f"{version.version} already has a readiness plan; a change is a new plan version with a reason",
            {"plan": "already registered"},
        )
    plan = _add(session, actor, version, _checked_plan(session, version, criteria), reason, 1)
    _watch(session, actor, version)
    session.commit()
    return plan


def change_plan(
    session: Session, actor: Actor, *, version_id: int, criteria: Sequence[Criterion], reason: str
) -> ReadinessPlan:
    """Record the next plan version (the earlier ones stay, as do the verdicts that used them)."""
    version = _version(session, actor, version_id)
    current = queries.latest_plan(session, version.id)
    if current is None:
        raise NotFound(f"{version.version} has no readiness plan to change", {"plan": "not registered"})
    checked = _checked_plan(session, version, criteria)
    if not reason.strip():
        raise ValidationFailed("say why the plan changes", {"reason": "must say why the plan changes"})
    plan = _add(session, actor, version, checked, reason, current.plan_version + 1)
    _watch(session, actor, version)
    session.commit()
    return plan


def _checked_plan(session: Session, version: ModelVersion, criteria: Sequence[Criterion]) -> list[dict[str, Any]]:
    return checked_criteria(session, version.model_id, criteria)


def _add(
    session: Session, actor: Actor, version: ModelVersion, criteria: list[dict[str, Any]], reason: str, number: int
) -> ReadinessPlan:
    """Store a plan version and audit it with its reason and the stage it was written in."""
    plan = ReadinessPlan(
        model_version_id=version.id,
        plan_version=number,
        criteria=criteria,
        reason=reason.strip(),
        created_by_id=actor.id,
    )
    session.add(plan)
    session.flush()
    details = {
        "version_id": version.id,
        "plan_version": number,
        "criteria": criteria,
        "reason": plan.reason,
        "stage": version.stage,
    }
    action = "readiness_plan.registered" if number == 1 else "readiness_plan.changed"
    audit.record(session, actor, [Change(action, "readiness_plan", plan.id, details)])
    return plan


def _watch(session: Session, actor: Actor, version: ModelVersion) -> None:
    """Make sure a readiness guardrail watches the version: a kill verdict then alerts and pauses it."""
    exists = session.scalar(
        select(Guardrail.id).where(
            Guardrail.model_version_id == version.id,
            Guardrail.kind == READINESS_GUARDRAIL,
            Guardrail.enabled.is_(True),
        )
    )
    if exists is not None:
        return
    # window_size is unused by this kind (the plan says what is measured); 10 is the column's floor.
    guardrail = Guardrail(
        model_version_id=version.id, kind=READINESS_GUARDRAIL, window_size=10, threshold=None, auto_pause=True
    )
    session.add(guardrail)
    session.flush()
    details = {"version_id": version.id, "kind": READINESS_GUARDRAIL, "auto_pause": True}
    audit.record(session, actor, [Change("guardrail.added", "guardrail", guardrail.id, details)])


def needs_go(session: Session, version: ModelVersion, stage: str) -> bool:
    """Whether moving the version to `stage` is a promotion judged on readiness: into production from a
    pilot, or from any stage once the version has a plan (a paused pilot, a shadow version with a plan)."""
    if stage != "production" or version.stage == "production":
        return False
    return version.stage == "pilot" or queries.latest_plan(session, version.id) is not None


def promotion_check(
    session: Session, actor: Actor, *, version: ModelVersion, override_reason: str | None
) -> dict[str, Any]:
    """Allow a move to production only on a go verdict, or an admin's override with a reason.

    Returns what the audit event records: the verdict, the plan version it used, and the override.
    """
    card = reports.scorecard(session, version)
    record: dict[str, Any] = {"readiness": card.verdict, "plan_version": card.plan_version}
    if card.plan_version is not None and card.verdict == "go":
        return record
    reason = (override_reason or "").strip()
    if not reason:
        raise Conflict(
            f"{version.version} can move to production only on a go verdict ({card.summary()}), "
            "or on an admin's override with a reason",
            {"stage": f"readiness reads {card.verdict_label.lower()}", "override_reason": "an admin must give one"},
        )
    permissions.require(actor, Action.ADMINISTER, session=session)
    return record | {"override_reason": reason}


def pilot_check(session: Session, version: ModelVersion) -> None:
    """A pilot starts only once its readiness plan is registered."""
    if queries.latest_plan(session, version.id) is None:
        raise Conflict(
            f"register a readiness plan for {version.version} before its pilot starts",
            {"stage": "a readiness plan must be registered before the pilot"},
        )
