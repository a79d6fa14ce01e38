"""Demo readiness plans: claims v2 reads go (its plan changed once, with a reason), fraud 2026.1 keeps
collecting, and fraud 2025.9 is a pilot its plan killed in the past (paused by its guardrail, then retired)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from demo.cases import fraud_case
from demo.catalog import SITES
from demo.history import insert_history
from feedback.audit import Actor
from feedback.catalog import services as catalog
from feedback.models import Alert, Model, ModelVersion, User
from feedback.overrides import guardrails
from feedback.readiness import reports
from feedback.readiness import services as readiness
from feedback.schemas import ModelVersionIn

PILOT_DAYS = 14


def _criterion(metric: str, direction: str, threshold: float, min_n: int = 0) -> readiness.Criterion:
    return readiness.Criterion(metric, direction, threshold, min_n)


def seed_readiness(
    session: Session,
    *,
    models: tuple[Model, Model],
    versions: tuple[ModelVersion, ...],
    staff: dict[str, list[User]],
    personality: dict[int, float],
    rng: random.Random,
    start: datetime,
    progress: Callable[[str], None],
) -> None:
    """A plan for every version; the killed pilot is checked (the seed fails if its plan did not kill it)."""
    fraud = models[1]
    v1, v2, f1 = versions
    owner = session.scalars(select(User).where(User.role == "model_owner").order_by(User.id)).first()
    assert owner is not None
    actor = Actor(owner.id, owner.email)
    plans: list[tuple[ModelVersion, list[readiness.Criterion]]] = [
        (v1, [_criterion("decisions", "at_least", 2000), _criterion("override_rate", "at_most", 0.15, 1000)]),
        (
            v2,
            [
                _criterion("decisions", "at_least", 2000),
                _criterion("override_rate", "at_most", 0.2, 1000),
                _criterion("accuracy", "at_least", 0.85, 1000),
                _criterion("median_seconds_to_decide", "at_least", 20, 500),
            ],
        ),
        (
            f1,
            [
                _criterion("decisions", "at_least", 1000),
                _criterion("override_rate", "at_most", 0.145, 1000),
                _criterion("accuracy", "at_least", 0.85, 1000),
            ],
        ),
    ]
    for version, criteria in plans:
        readiness.register_plan(session, actor, version_id=version.id, criteria=criteria)
    stricter = [*plans[1][1][:1], _criterion("override_rate", "at_most", 0.15, 1000), *plans[1][1][2:]]
    readiness.change_plan(
        session,
        actor,
        version_id=v2.id,
        criteria=[*stricter, _criterion("sla_attainment", "at_least", 0.85, 500)],
        reason="After v1's review: hold v2 to a 15% override limit and to the exception SLAs",
    )
    challenger = session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == v2.model_id, ModelVersion.stage == "shadow")
    )
    if challenger is not None:  # the shadow challenger (demo/challengers.py): its plan waits for a pilot
        criteria = [
            _criterion("decisions", "at_least", 2000),
            _criterion("override_rate", "at_most", 0.1, 1000),
            _criterion("accuracy", "at_least", 0.9, 1000),
        ]
        readiness.register_plan(session, actor, version_id=challenger.id, criteria=criteria)
    _killed_pilot(session, actor, fraud, staff, personality, rng, start - timedelta(days=30), progress)
    # At the full size (90 days, 420 cases a day) v2 reads go and 2026.1 keep collecting; smaller demos
    # (the tests') have too few decisions for go, so this says what they read rather than insisting.
    for version in (v2, f1):
        verdict = reports.scorecard(session, version).verdict
        progress(f"readiness {version.model.key} {version.version}: {verdict.replace('_', ' ')}")


def _killed_pilot(
    session: Session,
    actor: Actor,
    fraud: Model,
    staff: dict[str, list[User]],
    personality: dict[int, float],
    rng: random.Random,
    start: datetime,
    progress: Callable[[str], None],
) -> None:
    """fraud 2025.9: a two-week pilot before 2026.1 whose reviewers overrode it about one time in three."""
    version = catalog.add_model_version(
        session, actor, model_key=fraud.key, spec=ModelVersionIn(version="2025.9", stage="shadow")
    )
    version.created_at = start  # registered before 2026.1, as the story goes
    session.commit()
    criteria = [_criterion("decisions", "at_least", 1000), _criterion("override_rate", "at_most", 0.15, 200)]
    readiness.register_plan(session, actor, version_id=version.id, criteria=criteria)
    catalog.set_version_stage(session, actor, version_id=version.id, stage="pilot")
    shown: dict[str, datetime | None] = {site: start - timedelta(days=3650) for site in SITES}  # AI shown everywhere
    recs, decisions = [], []
    for n in range(400):
        created = start + timedelta(days=rng.uniform(0, PILOT_DAYS))
        rec, decision = fraud_case(rng, 900_000 + n, fraud, version, created, staff, personality, shown)
        decision.pop("truth")
        if decision["action"] == "accept" and rng.random() < 0.2:  # it flagged too many good payments
            others = [a for a in fraud.actions if a != rec["recommended_action"]]
            decision.update(action="override", final_action=others[0], reason_code="insufficient_evidence")
        recs.append(rec)
        decisions.append(decision)
    insert_history(session, recs, decisions)
    session.commit()
    guardrails.evaluate(session, [version.id], force=True, kinds=["readiness"])  # the worker's sweep, now
    alert = session.scalar(select(Alert).where(Alert.model_version_id == version.id))
    assert alert is not None and alert.paused_from == "pilot", "the demo's 2025.9 pilot should have been killed"
    guardrails.acknowledge_alert(session, actor, alert_id=alert.id)
    alert.opened_at = alert.acknowledged_at = start + timedelta(days=PILOT_DAYS)  # when it happened in the story
    session.commit()
    catalog.set_version_stage(session, actor, version_id=version.id, stage="retired")
    progress(f"readiness fraud_alert 2025.9: {alert.message}")
