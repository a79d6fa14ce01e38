"""The readiness scorecard: each criterion of the plan in force, and the plan, read go, kill or keep collecting."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from analytics import ab, sequential
from analytics.sequential import COLLECT, GO, KILL, Judgement
from feedback import formatting as fmt
from feedback.db import utcnow
from feedback.impact import runs
from feedback.models import Experiment, ModelVersion
from feedback.models.readiness import ReadinessPlan
from feedback.readiness import drift, queries

VERDICT_LABELS = {GO: "Go", KILL: "Kill", COLLECT: "Keep collecting"}
METRIC_LABELS = {
    "decisions": "Decisions",
    "override_rate": "Override rate",
    "accuracy": "AI accuracy against outcomes",
    "sla_attainment": "Exceptions resolved within their SLA",
    "drift": "Features drifted past their limit",
    "median_seconds_to_decide": "Median time to decide",
    "experiment_effect": "Experiment effect",
}
EXPERIMENT_METRIC_LABELS = {"override": "override rate", "correct": "accuracy", "handling_seconds": "handling time"}
DIRECTION_WORDS = {"at_least": "at least", "at_most": "at most"}
SHARES = ("override_rate", "accuracy", "sla_attainment")


@dataclass
class Reading:
    """One criterion's evidence and status."""

    name: str  # the criterion's code, e.g. "override_rate" or "experiment_effect:4:override"
    label: str  # in words
    metric: str
    direction: str
    threshold: float
    min_n: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    status: str
    reason: str

    @property
    def status_label(self) -> str:
        """The status in words."""
        return VERDICT_LABELS[self.status]

    @property
    def rule(self) -> str:
        """The criterion in words, e.g. "at most 20%"."""
        return f"{DIRECTION_WORDS[self.direction]} {format_value(self.metric, self.threshold)}"

    def shown(self, value: float | None) -> str:
        """A value of this criterion's metric, formatted for a page."""
        return "—" if value is None else format_value(self.metric, value)


@dataclass
class Scorecard:
    """A version's plan in force read against its data now."""

    version_id: int
    plan_version: int | None
    verdict: str
    evaluated_at: datetime
    criteria: list[Reading] = field(default_factory=list)

    @property
    def verdict_label(self) -> str:
        """The verdict in words."""
        return VERDICT_LABELS[self.verdict] if self.plan_version is not None else "No readiness plan"

    def as_api(self) -> dict[str, Any]:
        """The API's shape: codes, numbers and the plan version the verdict used."""
        keys = ("name", "threshold", "direction", "value", "ci_low", "ci_high", "n", "status")
        return {
            "verdict": self.verdict,
            "plan_version": self.plan_version,
            "evaluated_at": self.evaluated_at,
            "criteria": [{k: asdict(r)[k] for k in keys} for r in self.criteria],
        }

    def summary(self) -> str:
        """One sentence: the verdict and the criteria that decided it."""
        if self.plan_version is None:
            return "no readiness plan registered"
        deciding = [r for r in self.criteria if r.status == self.verdict] if self.verdict == KILL else []
        why = "; ".join(f"{r.label} {r.shown(r.value)} against {r.rule}" for r in deciding)
        return f"readiness plan {self.plan_version} reads {VERDICT_LABELS[self.verdict].lower()}" + (
            f": {why}" if why else ""
        )


def format_value(metric: str, value: float) -> str:
    """A criterion's value in its unit: shares as percentages, seconds, counts."""
    if metric in SHARES:
        return fmt.percent(value)
    if metric == "median_seconds_to_decide":
        return f"{fmt.number(value)} s"
    if metric in ("decisions", "drift"):
        return fmt.count(value)
    return fmt.number(value)


def criterion_name(criterion: dict[str, Any]) -> str:
    """A criterion's code: its metric, and for an experiment effect the experiment and its metric."""
    if criterion["metric"] == "experiment_effect":
        return f"experiment_effect:{criterion['experiment_id']}:{criterion['experiment_metric']}"
    return str(criterion["metric"])


def criterion_label(criterion: dict[str, Any]) -> str:
    """A criterion in words."""
    if criterion["metric"] == "experiment_effect":
        what = EXPERIMENT_METRIC_LABELS.get(criterion.get("experiment_metric") or "", "outcome")
        return f"Experiment {criterion['experiment_id']}: effect on {what} (AI shown minus hidden)"
    return METRIC_LABELS[criterion["metric"]]


def describe(criterion: dict[str, Any]) -> str:
    """A stored criterion in words, e.g. "Override rate at most 15.0%, judged from 1,000 on"."""
    rule = f"{DIRECTION_WORDS[criterion['direction']]} {format_value(criterion['metric'], criterion['threshold'])}"
    sample = f", judged from {criterion['min_n']:,} on" if criterion.get("min_n") else ""
    return f"{criterion_label(criterion)} {rule}{sample}"


def scorecard(session: Session, version: ModelVersion, plan: ReadinessPlan | None = None) -> Scorecard:
    """Evaluate the version's plan in force (or `plan`) now; without a plan the verdict is keep collecting."""
    plan = plan or queries.latest_plan(session, version.id)
    now = utcnow()
    if plan is None:
        return Scorecard(version.id, None, COLLECT, now)
    readings = [_read(session, version, criterion) for criterion in plan.criteria]
    return Scorecard(version.id, plan.plan_version, sequential.overall([r.status for r in readings]), now, readings)


def _read(session: Session, version: ModelVersion, criterion: dict[str, Any]) -> Reading:
    """Measure one criterion and judge it."""
    metric, direction = criterion["metric"], criterion["direction"]
    threshold, min_n = float(criterion["threshold"]), int(criterion["min_n"])
    value: float | None = None
    low: float | None = None
    high: float | None = None
    n = 0
    judgement: Judgement | None = None
    if metric in ("decisions", "override_rate"):
        decisions, overrides = queries.decision_counts(session, version.id)
        if metric == "decisions":
            n, value = decisions, float(decisions)
            low = high = value  # a count is known exactly, and it only grows: never a kill
            judgement = (
                Judgement(GO, "enough decisions")
                if decisions >= threshold
                else Judgement(COLLECT, f"{decisions:,} of the {threshold:,.0f} needed")
            )
        else:
            value, low, high, n = _rate(overrides)
    elif metric == "accuracy":
        value, low, high, n = _rate(queries.accuracy_counts(session, version.id))
    elif metric == "sla_attainment":
        value, low, high, n = _rate(queries.sla_counts(session, version.id))
    elif metric == "median_seconds_to_decide":
        value, low, high, n = _median(session, version.id)
    elif metric == "drift":
        evidence = drift.drifted_features(session, version.id)
        if not evidence.available:
            judgement = Judgement(COLLECT, evidence.reason)
        else:
            n, value = evidence.n_current, float(evidence.drifted)
            low = high = value
    else:
        value, low, high, n, judgement = _experiment(session, version, criterion)
    if judgement is None:
        judgement = sequential.judge(direction, threshold, low, high, n, min_n)
    return Reading(
        name=criterion_name(criterion),
        label=criterion_label(criterion),
        metric=metric,
        direction=direction,
        threshold=threshold,
        min_n=min_n,
        value=value,
        ci_low=low,
        ci_high=high,
        n=n,
        status=judgement.status,
        reason=judgement.reason,
    )


def _rate(counts: queries.Counts) -> tuple[float | None, float | None, float | None, int]:
    """A share with its confidence-sequence interval (no value before the first trial)."""
    if counts.n == 0:
        return None, None, None, 0
    low, high = sequential.rate_interval(counts.events, counts.n)
    return counts.events / counts.n, low, high, counts.n


def _median(session: Session, version_id: int) -> tuple[float | None, float | None, float | None, int]:
    """The median seconds to decide with its anytime-valid interval, from a few order statistics."""
    n, _ = queries.decision_counts(session, version_id)
    if n == 0:
        return None, None, None, 0
    low_rank, high_rank = sequential.median_ranks(n)
    middle = [(n - 1) // 2, n // 2]
    wanted = middle + [r for r in (low_rank, high_rank) if r is not None]
    at = queries.decide_seconds_at_ranks(session, version_id, wanted)
    if not all(r in at for r in wanted):  # decisions arrived between the two queries: read next time
        return None, None, None, n
    value = (at[middle[0]] + at[middle[1]]) / 2
    return (
        value,
        None if low_rank is None else at[low_rank],
        None if high_rank is None else at[high_rank],
        n,
    )


def _experiment(
    session: Session, version: ModelVersion, criterion: dict[str, Any]
) -> tuple[float | None, float | None, float | None, int, Judgement | None]:
    """The linked experiment's difference (AI shown minus control) with its asymptotic confidence sequence."""
    experiment = session.get(Experiment, criterion["experiment_id"])
    if experiment is None or experiment.model_id != version.model_id:
        return None, None, None, 0, Judgement(COLLECT, "the linked experiment no longer exists")
    column = criterion["experiment_metric"]
    frame = runs.ab_frame(session, experiment).dropna(subset=[column])
    cluster = None if experiment.unit == "case" else "unit_id"
    try:
        effect = ab.difference_in_means(frame, column, cluster=cluster)
    except ValueError as exc:
        return None, None, None, len(frame), Judgement(COLLECT, str(exc))
    n = effect.n_control + effect.n_treatment
    low, high = sequential.mean_interval(effect.difference, effect.se, n)
    return effect.difference, low, high, n, None
