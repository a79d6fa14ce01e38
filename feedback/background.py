"""The rows behind background jobs: claiming an attempt, retrying, giving up, and finding lost jobs.

The job library (Huey, see webapp/worker.py) delivers messages; these rows are the truth. A
message names the attempt it starts, and only one claim of that attempt succeeds, so a message
delivered twice never runs a job twice. A job whose row stopped moving (its worker died) is
found by `reclaim_stale` and queued again, because the library removes a message before running it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.models import (
    AnalysisRun,
    BacklogRefresh,
    ExportChunk,
    ExportJob,
    Guardrail,
    ModelVersion,
    WebhookDelivery,
)
from feedback.overrides.guardrails import evaluate

JobRow = type[AnalysisRun] | type[ExportJob] | type[BacklogRefresh]
KINDS: dict[str, JobRow] = {"analysis": AnalysisRun, "export": ExportJob, "backlog_refresh": BacklogRefresh}
OPEN = ("queued", "running")


@dataclass(frozen=True)
class Retry:
    """What became of a failed attempt: queued again after `delay` seconds, or failed for good."""

    again: bool
    delay: float


def backoff(attempt: int, base_seconds: float) -> float:
    """Seconds to wait before the attempt after `attempt`: doubling from `base_seconds`."""
    return base_seconds * 2.0 ** (attempt - 1)


def claim(session: Session, kind: str, job_id: int, attempt: int) -> bool:
    """Start attempt `attempt` of a queued job; False when another worker has it or it has ended."""
    model = KINDS[kind]
    claimed = session.scalar(
        update(model)
        .where(model.id == job_id, model.status == "queued", model.attempts == attempt - 1)
        .values(attempts=attempt, updated_at=utcnow(), message=f"attempt {attempt} starting")
        .returning(model.id)
    )
    if claimed is not None and kind == "export":
        # Pieces written by an attempt that died would clash with this attempt's.
        session.execute(delete(ExportChunk).where(ExportChunk.job_id == job_id))
    session.commit()
    return claimed is not None


def failed_attempt(
    session: Session, kind: str, job_id: int, attempt: int, error: str, *, max_attempts: int, base_seconds: float
) -> Retry:
    """Record a failed attempt: queue the job again with backoff, or fail it after `max_attempts`."""
    model = KINDS[kind]
    now = utcnow()
    delay = backoff(attempt, base_seconds)
    again = attempt < max_attempts
    values: dict[str, object] = (
        {"status": "queued", "message": f"attempt {attempt} failed ({error}); trying again in {delay:g} s"}
        if again
        else {"status": "failed", "message": f"failed after {attempt} attempts: {error}", "finished_at": now}
    )
    session.execute(update(model).where(model.id == job_id, model.attempts == attempt).values(updated_at=now, **values))
    session.commit()
    return Retry(again, delay)


def reclaim_stale(session: Session, *, lease: timedelta, max_attempts: int) -> list[tuple[str, int, int]]:
    """Queue again the open jobs that stopped moving for longer than `lease` (their worker died).

    Returns (kind, id, next attempt) for each job to hand to the queue; a job that has used all its
    attempts fails instead ("failed after N attempts").
    """
    now = utcnow()
    cutoff = now - lease
    again: list[tuple[str, int, int]] = []
    for kind, model in KINDS.items():
        stale = session.execute(
            select(model.id, model.attempts).where(model.status.in_(OPEN), model.updated_at < cutoff)
        ).all()
        for job_id, attempts in stale:
            same = update(model).where(model.id == job_id, model.attempts == attempts, model.updated_at < cutoff)
            if attempts >= max_attempts:
                gave_up = f"failed after {attempts} attempts: its worker stopped"
                session.execute(same.values(status="failed", message=gave_up, finished_at=now, updated_at=now))
            elif session.scalar(
                same.values(
                    status="queued", updated_at=now, message="its worker stopped; waiting to start again"
                ).returning(model.id)
            ):
                again.append((kind, job_id, attempts + 1))
    session.commit()
    return again


def queued_jobs(session: Session, now: datetime | None = None) -> dict[str, tuple[int, float]]:
    """Per kind (webhook deliveries too): how many jobs wait to start, and the age in seconds of the oldest."""
    now = now or utcnow()
    statements: dict[str, Any] = {
        kind: select(func.count(), func.min(model.created_at)).where(model.status == "queued")
        for kind, model in KINDS.items()
    }
    # Webhook deliveries wait from the moment they fall due (a retry's backoff is not waiting).
    statements["webhook_delivery"] = select(func.count(), func.min(WebhookDelivery.next_attempt_at)).where(
        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
    )
    out: dict[str, tuple[int, float]] = {}
    for kind, statement in statements.items():
        count, oldest = session.execute(statement).one()
        out[kind] = (int(count), (now - oldest).total_seconds() if oldest is not None else 0.0)
    return out


def sweep_guardrails(session: Session) -> int:
    """Evaluate the guardrails of every version still in use; returns how many alerts were opened."""
    versions = session.scalars(
        select(Guardrail.model_version_id)
        .join(ModelVersion, ModelVersion.id == Guardrail.model_version_id)
        .where(Guardrail.enabled.is_(True), ModelVersion.stage.in_(("shadow", "pilot", "production")))
        .distinct()
    ).all()
    return len(evaluate(session, versions))
