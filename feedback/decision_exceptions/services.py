"""Exceptions: the rules that raise them, their SLAs, and claiming, assigning and resolving them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, joinedload

from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import Conflict, NotFound, Problems, ValidationFailed
from feedback.models import (
    DEFAULT_SLA_HOURS,
    EXCEPTION_KINDS,
    SEVERITIES,
    DecisionException,
    Model,
    ModelVersion,
    Recommendation,
    SlaPolicy,
    User,
)
from feedback.permissions import Action
from feedback.schemas import RecommendationIn, VersionRulesIn

# Which kind a case is filed under when several rules fire, and how severe each kind is by default.
RULE_ORDER = ("model_error", "policy", "missing_data", "low_confidence")
DEFAULT_SEVERITY = {
    "model_error": "high",
    "policy": "high",
    "missing_data": "medium",
    "low_confidence": "medium",
    "reviewer_escalation": "medium",
    "audit_sample": "low",
}


@dataclass(frozen=True)
class Raised:
    """An exception a rule raises for a case."""

    kind: str
    severity: str
    reason: str


def rules_raise(item: RecommendationIn, rules: dict[str, Any]) -> Raised | None:
    """The exception a version's rules raise for an incoming recommendation, if any."""
    reasons: dict[str, str] = {}
    if item.error is not None:
        reasons["model_error"] = f"model error: {item.error}"
    flagged = sorted(set(item.flags) & set(rules.get("policy_flags") or []))
    if flagged:
        reasons["policy"] = f"policy flag {', '.join(flagged)}"
    required = rules.get("required_features") or []
    missing = [name for name in required if (item.features or {}).get(name) is None]
    if missing:
        reasons["missing_data"] = f"missing input {', '.join(missing)}"
    threshold = rules.get("min_confidence")
    if threshold is not None and item.confidence is not None and item.confidence < threshold:
        reasons["low_confidence"] = f"confidence {item.confidence:.2f} below {threshold:.2f}"
    if not reasons:
        return None
    kind = next(k for k in RULE_ORDER if k in reasons)
    return Raised(kind, DEFAULT_SEVERITY[kind], "; ".join(reasons[k] for k in RULE_ORDER if k in reasons))


def in_audit_sample(recommendation_id: int, rate: float) -> bool:
    """Deterministic, reviewer-blind draw: is this accepted case sent to a second review?"""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"audit-sample:{recommendation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def sla_hours(session: Session, model_ids: Sequence[int]) -> dict[tuple[int, str, str], float]:
    """Configured SLA hours by (model, kind, severity)."""
    rows = session.execute(
        select(SlaPolicy.model_id, SlaPolicy.kind, SlaPolicy.severity, SlaPolicy.hours).where(
            SlaPolicy.model_id.in_(list(model_ids))
        )
    )
    return {(m, k, s): h for m, k, s, h in rows}


def sla_due(
    policies: Mapping[tuple[int, str, str], float], model_id: int, kind: str, severity: str, opened: datetime
) -> datetime:
    """When an exception breaches its SLA."""
    hours = policies.get((model_id, kind, severity), DEFAULT_SLA_HOURS[severity])
    return opened + timedelta(hours=hours)


def exception_row(
    policies: Mapping[tuple[int, str, str], float],
    *,
    recommendation_id: int,
    model_id: int,
    site: str,
    kind: str,
    reason: str,
    raised_by_id: int | None,
    opened_at: datetime,
    severity: str | None = None,
) -> dict[str, Any]:
    """The columns of a newly opened exception: its severity (by kind unless given) and SLA due time."""
    severity = severity or DEFAULT_SEVERITY[kind]
    return {
        "recommendation_id": recommendation_id,
        "model_id": model_id,
        "site": site,
        "kind": kind,
        "severity": severity,
        "reason": reason,
        "raised_by_id": raised_by_id,
        "opened_at": opened_at,
        "sla_due_at": sla_due(policies, model_id, kind, severity, opened_at),
        "status": "open",
    }


def open_exception(
    session: Session,
    rec: Recommendation,
    *,
    kind: str,
    reason: str,
    raised_by: User | None,
    severity: str | None = None,
) -> DecisionException:
    """Open an exception on a case in the caller's transaction (the caller audits and commits)."""
    row = exception_row(
        sla_hours(session, [rec.model_id]),
        recommendation_id=rec.id,
        model_id=rec.model_id,
        site=rec.site,
        kind=kind,
        reason=reason,
        raised_by_id=raised_by.id if raised_by else None,
        opened_at=utcnow(),
        severity=severity,
    )
    exc = DecisionException(**row)
    session.add(exc)
    session.flush()
    return exc


# --- handling -------------------------------------------------------------------------------


def _get(session: Session, exception_id: int) -> DecisionException:
    """An exception with its case, or NotFound."""
    exc = session.get(
        DecisionException,
        exception_id,
        options=[joinedload(DecisionException.recommendation).joinedload(Recommendation.model)],
        populate_existing=True,
    )
    if exc is None:
        raise NotFound(f"no exception {exception_id}")
    return exc


def assign_exception(session: Session, actor: User, *, exception_id: int, assignee_id: int | None) -> DecisionException:
    """Assign an open exception to a handler (claim it when assigning to oneself; None releases it)."""
    permissions.require(actor, Action.HANDLE_EXCEPTIONS)
    exc = _get(session, exception_id)
    if exc.status == "resolved":
        raise Conflict("this exception is already resolved")
    assignee = None
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        if assignee is None or not assignee.active or assignee.role not in permissions.HANDLER_ROLES:
            raise ValidationFailed("cannot assign to that user", {"assignee_id": "must be an active exception handler"})
    before = exc.assignee_id
    result = session.execute(
        update(DecisionException)
        .where(
            DecisionException.id == exc.id,
            DecisionException.row_version == exc.row_version,
            DecisionException.status != "resolved",
        )
        .values(
            assignee_id=assignee_id,
            status="in_progress" if assignee_id else "open",
            row_version=DecisionException.row_version + 1,
        )
        .returning(DecisionException.id)
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        session.rollback()
        raise Conflict("someone else changed this exception just now; reload and try again")
    action = "exception.claimed" if assignee_id == actor.id else "exception.assigned"
    audit.record(
        session,
        Actor(actor.id, actor.email),
        [Change(action, "exception", exc.id, {"from": before, "to": assignee.email if assignee else None})],
    )
    session.commit()
    return _get(session, exc.id)


def resolve_exception(
    session: Session, actor: User, *, exception_id: int, final_action: str, note: str = ""
) -> DecisionException:
    """Resolve an exception with the final action; the case is then resolved too."""
    permissions.require(actor, Action.HANDLE_EXCEPTIONS)
    exc = _get(session, exception_id)
    model = exc.recommendation.model
    if exc.status == "resolved":
        raise Conflict(
            f"this exception was already resolved by {exc.resolved_by.name if exc.resolved_by else 'someone'}"
        )
    if exc.assignee_id not in (None, actor.id):
        holder = exc.assignee.name if exc.assignee else "another handler"
        raise Conflict(f"this exception is assigned to {holder}; ask them or reassign it first")
    problems = Problems()
    if not final_action:  # left blank on the form: the request's own fault
        problems.invalid["final_action"] = f"must be one of {', '.join(model.actions)}"
    elif final_action not in model.actions:  # an action the model's stored list lacks: 409
        problems.disallowed["final_action"] = f"must be one of {', '.join(model.actions)}"
    if len(note) > 2000:
        problems.invalid["note"] = "must be at most 2000 characters"
    problems.raise_any("the resolution is invalid")
    now = utcnow()
    result = session.execute(
        update(DecisionException)
        .where(DecisionException.id == exc.id, DecisionException.row_version == exc.row_version)
        .values(
            status="resolved",
            resolved_at=now,
            resolved_by_id=actor.id,
            assignee_id=exc.assignee_id or actor.id,
            resolution_action=final_action,
            resolution_note=note.strip(),
            row_version=DecisionException.row_version + 1,
        )
        .returning(DecisionException.id)
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        session.rollback()
        raise Conflict("someone else changed this exception just now; reload and try again")
    if exc.kind != "audit_sample":  # an audit sample re-checks a decided case; the case stays decided
        session.execute(
            update(Recommendation)
            .where(Recommendation.id == exc.recommendation_id)
            .values(status="resolved", row_version=Recommendation.row_version + 1)
            .execution_options(synchronize_session=False)
        )
    audit.record(
        session,
        Actor(actor.id, actor.email),
        [Change("exception.resolved", "exception", exc.id, {"final_action": final_action, "kind": exc.kind})],
    )
    session.commit()
    return _get(session, exc.id)


# --- settings -------------------------------------------------------------------------------


def set_version_rules(session: Session, actor: Actor, *, version_id: int, rules: VersionRulesIn) -> ModelVersion:
    """Replace a version's exception rules."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"no model version {version_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=version.model_id)
    version.rules = rules.model_dump()
    audit.record(session, actor, [Change("model_version.rules_changed", "model_version", version.id, version.rules)])
    session.commit()
    return version


def set_sla_policies(
    session: Session, actor: Actor, *, model: Model, hours: dict[tuple[str, str], float | None]
) -> None:
    """Replace a model's SLA table; a missing or empty entry falls back to the default for its severity."""
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=model.id)
    fields = {}
    for (kind, severity), value in hours.items():
        if kind not in EXCEPTION_KINDS or severity not in SEVERITIES:
            fields[f"{kind}.{severity}"] = "unknown kind or severity"
        elif value is not None and not 0 < value <= 24 * 365:
            fields[f"{kind}.{severity}"] = "must be between 0 and 8760 hours"
    if fields:
        raise ValidationFailed("the SLA table is invalid", fields)
    session.execute(delete(SlaPolicy).where(SlaPolicy.model_id == model.id))
    rows = [
        SlaPolicy(model_id=model.id, kind=k, severity=s, hours=v)
        for (k, s), v in sorted(hours.items())
        if v is not None
    ]
    session.add_all(rows)
    audit.record(
        session,
        actor,
        [Change("model.sla_changed", "model", model.id, {f"{r.kind}.{r.severity}": r.hours for r in rows})],
    )
    session.commit()


def handlers(session: Session) -> list[User]:
    """Active users who may be assigned exceptions."""
    return list(
        session.scalars(select(User).where(User.active, User.role.in_(permissions.HANDLER_ROLES)).order_by(User.name))
    )
