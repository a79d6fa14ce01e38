"""Guardrails: limits on a version's override rate, accuracy or stability; breaches raise alerts and may pause it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.audit import SYSTEM, Actor, Change
from feedback.db import utcnow
from feedback.errors import NotFound, ValidationFailed
from feedback.models import GUARDRAIL_KINDS, Alert, Guardrail, ModelVersion
from feedback.overrides.measures import DRIFT_MAX_DAYS, measure
from feedback.permissions import Action

log = logging.getLogger(__name__)


CONTROL_CHART_EVERY = timedelta(minutes=10)  # a control chart needs daily counts: check it at most this often


# Kinds that read much of the version's history: checked at most every CONTROL_CHART_EVERY unless forced.
THROTTLED = ("control_chart", "readiness", "drift")


PAUSABLE = ("pilot", "production")


def add_guardrail(
    session: Session,
    actor: Actor,
    *,
    version_id: int,
    kind: str,
    window_size: int,
    threshold: float | None,
    auto_pause: bool,
) -> Guardrail:
    """Add a guardrail to a version."""
    fields = {}
    manual = tuple(k for k in GUARDRAIL_KINDS if k != "readiness")  # that one comes with a readiness plan
    if kind not in manual:
        fields["kind"] = f"must be one of {', '.join(manual)}"
    if not 10 <= window_size <= 100_000:
        fields["window_size"] = "must be between 10 and 100000"
    if kind != "control_chart" and (threshold is None or not 0 <= threshold <= 1):
        fields["threshold"] = "must be a share between 0 and 1"
    if kind == "drift" and window_size > DRIFT_MAX_DAYS:
        fields["window_size"] = f"a drift window is at most {DRIFT_MAX_DAYS} days"
    if fields:
        raise ValidationFailed("the guardrail is invalid", fields)
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"no model version {version_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=version.model_id)
    guardrail = Guardrail(
        model_version_id=version_id,
        kind=kind,
        window_size=window_size,
        threshold=None if kind == "control_chart" else threshold,
        auto_pause=auto_pause,
    )
    session.add(guardrail)
    session.flush()
    audit.record(
        session,
        actor,
        [
            Change(
                "guardrail.added",
                "guardrail",
                guardrail.id,
                {
                    "version_id": version_id,
                    "kind": kind,
                    "window_size": window_size,
                    "threshold": guardrail.threshold,
                    "auto_pause": auto_pause,
                },
            )
        ],
    )
    session.commit()
    return guardrail


def describe(guardrail: Guardrail) -> str:
    """The guardrail's rule in words, e.g. "override rate over the last 50 decisions above 30%"."""
    limit = f"{(guardrail.threshold or 0) * 100:.4g}%"
    if guardrail.kind == "override_rate_above":
        return f"override rate over the last {guardrail.window_size} decisions above {limit}"
    if guardrail.kind == "accuracy_below":
        return f"accuracy over the last {guardrail.window_size} outcomes below {limit}"
    if guardrail.kind == "readiness":
        return "a kill verdict of its readiness plan"
    if guardrail.kind == "drift":
        days, distance = guardrail.window_size, guardrail.threshold or 0
        return f"any input or output drifted over the last {days} days (distance limit {distance:.2g})"
    return f"today's override rate above the control limit of the last {guardrail.window_size} days"


def removal_consequence(guardrail: Guardrail) -> str:
    """What removing the guardrail does, in one sentence for the confirmation."""
    version = guardrail.model_version
    name = f"{version.model.name} {version.version}"
    paused = " or pause the version" if guardrail.auto_pause else ""
    return (
        f"{name} will no longer be watched for {describe(guardrail)}: a breach will not raise an alert{paused}. "
        "Its past alerts stay."
    )


def get_guardrail(session: Session, actor: Actor, *, guardrail_id: int) -> Guardrail:
    """A guardrail the actor may change, or NotFound / PermissionDenied."""
    guardrail = session.get(Guardrail, guardrail_id)
    if guardrail is None:
        raise NotFound(f"no guardrail {guardrail_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=guardrail.model_version.model_id)
    return guardrail


def remove_guardrail(session: Session, actor: Actor, *, guardrail_id: int) -> None:
    """Switch a guardrail off (its alerts stay)."""
    guardrail = get_guardrail(session, actor, guardrail_id=guardrail_id)
    if not guardrail.enabled:
        return
    guardrail.enabled = False
    details = {
        "version_id": guardrail.model_version_id,
        "kind": guardrail.kind,
        "window_size": guardrail.window_size,
        "threshold": guardrail.threshold,
        "auto_pause": guardrail.auto_pause,
    }
    audit.record(session, actor, [Change("guardrail.removed", "guardrail", guardrail.id, details)])
    session.commit()


def enabled(session: Session) -> list[Guardrail]:
    """Every guardrail that is on, oldest first."""
    return list(session.scalars(select(Guardrail).where(Guardrail.enabled.is_(True)).order_by(Guardrail.id)))


def check_after_change(
    session: Session, version_ids: list[int], *, accuracy: bool = True, override_rate: bool = True
) -> None:
    """Evaluate guardrails after a committed change; a failure here is logged, never undoes the change.

    A decision checks only what it can have moved (the bound is zero decisions, see
    docs/performance.md):
    - accuracy over the last n labelled cases moves only when a decided case gains a label (its
      outcome arrives, or a case whose outcome came first is decided): else accuracy=False;
    - the override rate over the last n decisions can rise only when an override enters the
      window; an accept or escalation can only keep or lower it: such a decision passes
      override_rate=False, and the guardrail is measured only while its window has not filled
      yet (last_value is None, also set when its alert is acknowledged, so a breach that still
      holds alerts again at the very next decision);
    - a control chart and drift are checked at most every CONTROL_CHART_EVERY;
    - a readiness plan, which reads the whole pilot, is judged by the worker's guardrail sweep only.
    """
    try:
        evaluate(session, version_ids, accuracy=accuracy, override_rate=override_rate, readiness=False)
    except Exception:  # the change is stored; the check runs again on the next one
        session.rollback()
        log.exception("guardrail check failed for versions %s", version_ids)


def due_after_decision(session: Session, version_id: int, *, accuracy: bool, override_rate: bool) -> bool:
    """Whether a decision of this version can have moved any of its guardrails (asked inside its transaction).

    Most decisions move none: then no second transaction is needed after the decision's.
    """
    now = utcnow()
    query = select(Guardrail).where(Guardrail.model_version_id == version_id, Guardrail.enabled.is_(True))
    return any(
        _due(g, now, force=False, accuracy=accuracy, override_rate=override_rate, readiness=False)
        for g in session.scalars(query)
    )


def _due(
    guardrail: Guardrail, now: datetime, *, force: bool, accuracy: bool, override_rate: bool, readiness: bool
) -> bool:
    """Whether this change can have moved the guardrail (see check_after_change)."""
    if force:
        return True
    if guardrail.kind == "readiness" and not readiness:
        return False
    if guardrail.kind in THROTTLED:
        return not guardrail.last_checked_at or now - guardrail.last_checked_at >= CONTROL_CHART_EVERY
    if guardrail.kind == "accuracy_below":
        return accuracy
    return override_rate or guardrail.last_value is None


def evaluate(
    session: Session,
    version_ids: Iterable[int],
    *,
    force: bool = False,
    accuracy: bool = True,
    override_rate: bool = True,
    readiness: bool = True,
    kinds: Iterable[str] | None = None,
) -> list[Alert]:
    """Check the versions' guardrails that are due (all with force; of these kinds if given).

    A new breach opens an alert and, for an auto-pause guardrail, pauses the version.
    """
    ids = list(set(version_ids))
    if not ids:
        return []
    query = select(Guardrail).where(Guardrail.model_version_id.in_(ids), Guardrail.enabled.is_(True))
    if kinds is not None:
        query = query.where(Guardrail.kind.in_(list(kinds)))
    now = utcnow()
    due = {"force": force, "accuracy": accuracy, "override_rate": override_rate, "readiness": readiness}
    guardrails = [g for g in session.scalars(query) if _due(g, now, **due)]
    if not guardrails:
        session.commit()  # nothing was measured: end the read transaction
        return []
    raised: list[Alert] = []
    for guardrail in guardrails:
        value, breached, message = measure(session, guardrail)
        guardrail.last_value, guardrail.last_checked_at = value, now
        already = session.scalar(
            select(Alert.id).where(Alert.guardrail_id == guardrail.id, Alert.status == "open").limit(1)
        )
        if breached and already is None:
            raised.append(_raise(session, guardrail, value, message))
    session.commit()
    return raised


def _raise(session: Session, guardrail: Guardrail, value: float | None, message: str) -> Alert:
    """Open an alert, pausing the version if the guardrail says so."""
    version = guardrail.model_version
    paused_from = None
    changes = []
    if guardrail.auto_pause and version.stage in PAUSABLE:
        paused_from, version.stage = version.stage, "paused"
        message += "; the version was paused and reviewers now decide unaided"
        changes.append(
            Change(
                "model_version.stage_changed",
                "model_version",
                version.id,
                {"from": paused_from, "to": "paused", "by": "guardrail"},
            )
        )
    alert = Alert(
        guardrail_id=guardrail.id, model_version_id=version.id, value=value, message=message, paused_from=paused_from
    )
    session.add(alert)
    session.flush()
    audit.record(session, SYSTEM, [Change("alert.raised", "alert", alert.id, {"message": message}), *changes])
    return alert


def reconsider_alerts(session: Session, version_id: int, *, since: datetime) -> list[Change]:
    """After a decision is undone: withdraw the version's open alerts raised since it that no longer hold.

    Each such alert's guardrail is measured again without the decision. One still breached stays;
    one that is not is removed (its history stays in the audit trail), and a version it paused
    returns to the stage it had. The caller records the returned changes and commits.
    """
    alerts = session.scalars(
        select(Alert)
        .where(Alert.model_version_id == version_id, Alert.status == "open", Alert.opened_at >= since)
        .order_by(Alert.id.desc())
    ).all()
    changes: list[Change] = []
    for alert in alerts:
        value, breached, _ = measure(session, alert.guardrail)
        alert.guardrail.last_value = value
        if breached:
            continue
        version = alert.model_version
        if alert.paused_from and version.stage == "paused":
            changes.append(
                Change(
                    "model_version.stage_changed",
                    "model_version",
                    version.id,
                    {"from": "paused", "to": alert.paused_from, "by": "retraction"},
                )
            )
            version.stage = alert.paused_from
        changes.append(Change("alert.withdrawn", "alert", alert.id, {"message": alert.message}))
        session.delete(alert)
    session.flush()
    return changes


def resume_version(session: Session, actor: Actor, *, version_id: int) -> ModelVersion:
    """Un-pause a version to the stage it had before its guardrail paused it, and close its alerts."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"no model version {version_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=version.model_id)
    if version.stage != "paused":
        raise ValidationFailed("this version is not paused", {"stage": f"is {version.stage}"})
    alerts = session.scalars(
        select(Alert).where(Alert.model_version_id == version_id, Alert.status == "open").order_by(Alert.id.desc())
    ).all()
    previous = next((a.paused_from for a in alerts if a.paused_from), "production")
    version.stage = previous
    now = utcnow()
    for alert in alerts:
        alert.status, alert.acknowledged_by_id, alert.acknowledged_at = "acknowledged", actor.id, now
        alert.guardrail.last_value = None  # measured again at the next decision: a breach that holds alerts again
    audit.record(
        session,
        actor,
        [
            Change("model_version.stage_changed", "model_version", version.id, {"from": "paused", "to": previous}),
            *[Change("alert.acknowledged", "alert", a.id) for a in alerts],
        ],
    )
    session.commit()
    return version


def acknowledge_alert(session: Session, actor: Actor, *, alert_id: int) -> Alert:
    """Mark an alert as seen (a paused version stays paused until resumed)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=alert.model_version.model_id)
    alert.status, alert.acknowledged_by_id, alert.acknowledged_at = "acknowledged", actor.id, utcnow()
    alert.guardrail.last_value = None  # measured again at the next decision: a breach that holds alerts again
    audit.record(session, actor, [Change("alert.acknowledged", "alert", alert.id)])
    session.commit()
    return alert
