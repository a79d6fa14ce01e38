"""Register and change readiness plans. A plan is never edited: a change is a new plan version with a reason."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.errors import Conflict, NotFound, Problems, ValidationFailed
from feedback.models import Experiment, Guardrail, ModelVersion
from feedback.models.readiness import DIRECTIONS, READINESS_METRICS, ReadinessPlan
from feedback.permissions import Action
from feedback.readiness import queries, reports

MAX_CRITERIA = 20
MAX_MIN_N = 10_000_000
MAX_SECONDS = 30 * 86400
EXPERIMENT_METRICS = ("override", "correct", "handling_seconds")
# Which ways each metric may be judged: a count of decisions only upwards, drifted features only downwards.
ALLOWED_DIRECTIONS = {"decisions": ("at_least",), "drift": ("at_most",)}
READINESS_GUARDRAIL = "readiness"


def checked_criteria(session: Session, model_id: int, raw: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The criteria as stored, or an error naming each bad field (`criteria[2].threshold`).

    What a criterion's own fields break is a 422 (the API's schema states those rules too); an
    experiment that does not exist a 404, one of another model a 409; a criterion repeated a 409.
    """
    if not 1 <= len(raw) <= MAX_CRITERIA:
        raise ValidationFailed("a plan needs criteria", {"criteria": f"must hold 1 to {MAX_CRITERIA} criteria"})
    problems = Problems()
    criteria, seen = [], set()
    for i, item in enumerate(raw):
        at = f"criteria[{i}]"
        criterion = _checked(session, model_id, item, at, problems)
        key = (criterion.get("metric"), criterion.get("experiment_id"), criterion.get("experiment_metric"))
        if key in seen and f"{at}.metric" not in problems.fields:
            problems.repeated[f"{at}.metric"] = "repeats another criterion of this plan"
        seen.add(key)
        criteria.append(criterion)
    problems.raise_any("the readiness plan has invalid fields")
    return criteria


def _checked(session: Session, model_id: int, item: Mapping[str, Any], at: str, problems: Problems) -> dict[str, Any]:
    """One criterion normalised; its problems added to `problems`."""
    fields = problems.invalid
    metric, direction = item.get("metric"), item.get("direction")
    threshold, min_n = item.get("threshold"), item.get("min_n", 0)
    if metric not in READINESS_METRICS:
        fields[f"{at}.metric"] = f"must be one of {', '.join(READINESS_METRICS)}"
    allowed = ALLOWED_DIRECTIONS.get(str(metric), DIRECTIONS)
    if direction not in allowed:
        fields[f"{at}.direction"] = f"must be {' or '.join(allowed)}" + (f" for {metric}" if metric else "")
    problem = _threshold_problem(metric, threshold)
    if problem:
        fields[f"{at}.threshold"] = problem
    if isinstance(min_n, bool) or not isinstance(min_n, int) or not 0 <= min_n <= MAX_MIN_N:
        fields[f"{at}.min_n"] = f"must be a whole number from 0 to {MAX_MIN_N}"
    criterion: dict[str, Any] = {"metric": metric, "direction": direction, "threshold": threshold, "min_n": min_n}
    if metric == "experiment_effect":
        experiment_id, column = item.get("experiment_id"), item.get("experiment_metric")
        if isinstance(experiment_id, bool) or not isinstance(experiment_id, int) or not 0 < experiment_id < 2**31:
            fields[f"{at}.experiment_id"] = "must name an experiment on this model"
        else:
            experiment = session.get(Experiment, experiment_id)
            if experiment is None:
                problems.disallowed[f"{at}.experiment_id"] = "names no experiment"  # a rule on stored rows: 409
            elif experiment.model_id != model_id:
                problems.disallowed[f"{at}.experiment_id"] = "is an experiment on another model"
        if column not in EXPERIMENT_METRICS:
            fields[f"{at}.experiment_metric"] = f"must be one of {', '.join(EXPERIMENT_METRICS)}"
        criterion |= {"experiment_id": experiment_id, "experiment_metric": column}
    else:
        for extra in ("experiment_id", "experiment_metric"):
            if item.get(extra) is not None:
                fields[f"{at}.{extra}"] = "only an experiment_effect criterion names an experiment"
    return criterion


def _threshold_problem(metric: Any, threshold: Any) -> str | None:
    """Why the threshold does not fit the metric (None when it does)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
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
    session: Session, actor: Actor, *, version_id: int, criteria: Sequence[Mapping[str, Any]], reason: str = ""
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
    session: Session, actor: Actor, *, version_id: int, criteria: Sequence[Mapping[str, Any]], reason: str
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


def _checked_plan(
    session: Session, version: ModelVersion, criteria: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
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
