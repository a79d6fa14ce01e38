"""The retraining backlog's writes: a refresh turns mined patterns (`patterns.mine`) into items; triage."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.backlog.patterns import MINED_COLUMNS, Mined, mine
from feedback.backlog.queries import get_item, item_payload, latest_refresh, refresh_interrupted, verification
from feedback.db import sqlite_write_intent, utcnow
from feedback.errors import Conflict, NotFound, Problems
from feedback.models import (
    BACKLOG_STATUSES,
    BacklogItem,
    BacklogRefresh,
    Model,
    User,
)
from feedback.permissions import Action
from feedback.webhooks import services as webhooks


@dataclass(frozen=True)
class RefreshSummary:
    """What a refresh changed: items created, updated and retired."""

    created: int
    updated: int
    retired: int


def refresh(
    session: Session, actor: Actor, *, model_key: str, min_cases: int = 30, alpha: float = 0.05
) -> RefreshSummary:
    """Mine every version of a model and create or update its backlog items (never duplicating one)."""
    model = _model_to_refresh(session, actor, model_key)
    mined = mine(session, model.id, min_cases=min_cases, alpha=alpha)
    return apply_mined(session, actor, model_id=model.id, mined=mined)


def _model_to_refresh(session: Session, actor: Actor, model_key: str) -> Model:
    model = session.scalars(select(Model).where(Model.key == model_key)).first()
    if model is None:
        raise NotFound(f"no model {model_key}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=model.id)
    return model


def apply_mined(session: Session, actor: Actor, *, model_id: int, mined: Sequence[Mined]) -> RefreshSummary:
    """Write mined patterns in one short transaction, merging by identity (version, pattern key).

    An existing item gets the new statistics and nothing else: its status, owner and notes stay
    as people left them, even if they changed them while the mining ran. The statistics are
    written with a plain table UPDATE, which leaves the item's row_version alone, so a triage
    form opened before the refresh still saves.
    """
    table = cast(Table, BacklogItem.__table__)
    existing = {
        (row.model_version_id, row.pattern_key): row
        for row in session.execute(
            select(table.c.id, table.c.model_version_id, table.c.pattern_key, table.c.active).where(
                table.c.model_id == model_id
            )
        )
    }
    now = utcnow()
    seen: set[tuple[int, str]] = set()
    created: list[BacklogItem] = []
    updated = 0
    for found in mined:
        key = (found.version_id, found.pattern_key)
        seen.add(key)
        row = existing.get(key)
        if row is None:
            item = BacklogItem(
                model_id=model_id,
                model_version_id=found.version_id,
                pattern_key=found.pattern_key,
                active=True,
                refreshed_at=now,
                **found.stats,
            )
            session.add(item)
            created.append(item)
        else:
            stats = {name: found.stats[name] for name in MINED_COLUMNS}
            session.execute(update(table).where(table.c.id == row.id).values(**stats, active=True, refreshed_at=now))
            updated += 1
    retire = [row.id for key, row in existing.items() if key not in seen and row.active]
    if retire:
        session.execute(update(table).where(table.c.id.in_(retire)).values(active=False, refreshed_at=now))
    try:
        session.flush()
    except IntegrityError:
        # Another refresh of the same model won the race; its items stand, nothing is duplicated.
        session.rollback()
        raise Conflict("the backlog is being refreshed by someone else; try again in a moment") from None
    changes = [
        Change("backlog.item_created", "backlog_item", i.id, {"pattern": i.pattern_key, "title": i.title})
        for i in created
    ]
    changes.append(
        Change(
            "backlog.refreshed",
            "model",
            model_id,
            {"created": len(created), "updated": updated, "retired": len(retire)},
        )
    )
    audit.record(session, actor, changes)
    for item in created:
        webhooks.enqueue(session, "backlog.item_created", item_payload(item))
    session.commit()
    # Objects this session already holds must show the statistics just written.
    session.expire_all()
    webhooks.deliver_soon()
    return RefreshSummary(len(created), updated, len(retire))


def start_refresh(session: Session, actor: Actor | User, *, model_key: str) -> tuple[BacklogRefresh, bool]:
    """Queue a refresh of a model's backlog; the caller hands its id to a background worker.

    One refresh per model at a time: while one is under way it is returned instead (with False,
    "not new"). One whose worker died does not block a new start. The operator's tools (an actor
    without a user) may queue one too; the worker then acts as "background".
    """
    who = actor if isinstance(actor, Actor) else Actor(actor.id, actor.email)
    model = _model_to_refresh(session, who, model_key)
    current = latest_refresh(session, model.id)
    if current is not None and current.status in ("queued", "running") and not refresh_interrupted(current):
        return current, False
    job = BacklogRefresh(model_id=model.id, created_by_id=who.id, message="waiting to start")
    session.add(job)
    session.commit()
    return job, True


def execute_refresh(session: Session, job_id: int, *, between: Callable[[], None] | None = None) -> None:
    """Run a queued refresh: mine (reads only, progress written as it goes), then write the items.

    A conflict fails the job; other errors are raised for the worker to retry. `between` runs
    after the mining and before the items are written (tests use it to triage at exactly that moment).
    """
    found = session.get(BacklogRefresh, job_id)
    if found is None:
        raise NotFound(f"no backlog refresh {job_id}")
    job: BacklogRefresh = found
    if job.status != "queued":
        raise Conflict(f"backlog refresh {job_id} is {job.status}")
    user = session.get(User, job.created_by_id) if job.created_by_id else None
    actor = Actor(user.id, user.email) if user else Actor(None, "background")

    def progress(fraction: float, message: str) -> None:
        session.commit()  # end the mining's read transaction before writing
        with write_intent():
            job.status, job.progress, job.message, job.updated_at = "running", fraction, message, utcnow()
            session.commit()

    try:
        progress(0.0, "starting")
        mined = mine(session, job.model_id, progress=progress)
        progress(0.95, "saving the patterns")
        if between is not None:
            between()
        with write_intent():
            summary = apply_mined(session, actor, model_id=job.model_id, mined=mined)
            job.status, job.message = "done", ""
            job.created, job.updated, job.retired = summary.created, summary.updated, summary.retired
            job.progress, job.updated_at = 1.0, utcnow()
            job.finished_at = job.updated_at
            session.commit()
    except Exception as exc:  # a conflict is the refresh's answer; anything else goes back to the worker
        session.rollback()
        if not isinstance(exc, Conflict):
            raise  # unexpected (a lost connection): the worker retries it, then fails it after its attempts
        with write_intent():
            job = session.get(BacklogRefresh, job_id, populate_existing=True) or job
            job.status, job.message = "failed", exc.message
            job.updated_at = job.finished_at = utcnow()
            session.commit()


@contextmanager
def write_intent() -> Iterator[None]:
    """On SQLite, the transactions begun inside take the write lock up front (see feedback.db)."""
    token = sqlite_write_intent.set(True)
    try:
        yield
    finally:
        sqlite_write_intent.reset(token)


def update_item(
    session: Session,
    actor: User,
    *,
    item_id: int,
    status: str | None = None,
    owner_email: str | None = None,
    notes: str | None = None,
    row_version: int | None = None,
) -> BacklogItem:
    """Change an item's status, owner or notes; `verified` needs a newer version to prove it."""
    permissions.require(actor, Action.CHANGE_MODEL)  # before saying whether the item exists
    item = get_item(session, item_id)
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=item.model_id)
    if row_version is not None and row_version != item.row_version:
        raise Conflict("someone else changed this item; reload it and try again")
    problems = Problems()  # what the request gets wrong is a 422; what the stored data allows, a 409
    before = {"status": item.status, "owner": item.owner.email if item.owner else None}
    evidence: dict[str, Any] = {}
    if status is not None and status != item.status:
        evidence = _set_status(session, item, status, problems)
    if owner_email is not None:
        _set_owner(session, item, owner_email, problems)
    if notes is not None:
        if len(notes) > 10_000:
            problems.invalid["notes"] = "must be at most 10,000 characters"
        item.notes = notes
    if problems:
        session.rollback()
        problems.raise_any("the change is not allowed")
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise Conflict("someone else changed this item at the same time; reload it") from None
    changes = [
        Change("backlog.item_updated", "backlog_item", item.id, {"before": before, "status": item.status, **evidence})
    ]
    audit.record(session, Actor(actor.id, actor.email), changes)
    if before["status"] != item.status:
        session.refresh(item)
        webhooks.enqueue(session, "backlog.status_changed", {**item_payload(item), "previous_status": before["status"]})
    session.commit()
    webhooks.deliver_soon()
    return get_item(session, item.id)


def _set_status(session: Session, item: BacklogItem, status: str, problems: Problems) -> dict[str, Any]:
    """Move the item to `status`; `verified` only with a newer version significantly better here (its evidence)."""
    evidence: dict[str, Any] = {}
    if status not in BACKLOG_STATUSES:
        problems.invalid["status"] = "must be one of " + ", ".join(BACKLOG_STATUSES)
    elif status == "verified":
        check = verification(session, item)
        if check is None:
            problems.disallowed["status"] = "no newer version has decided cases in this pattern yet"
        elif not check.lower:
            problems.disallowed["status"] = (
                f"{check.version.version} is overridden {check.rate:.1%} here ({check.overrides}/{check.cases}) "
                f"against {item.rate:.1%}: not significantly lower (one-sided p = {check.p_value:.3g})"
            )
        else:
            item.verified_by_version_id = check.version.id
            evidence = {"version": check.version.version, "rate": check.rate, "p_value": check.p_value}
    if status != "verified":
        item.verified_by_version_id = None
    item.status = status
    return evidence


def _set_owner(session: Session, item: BacklogItem, owner_email: str, problems: Problems) -> None:
    """Give the item to someone who may change its model ("" takes it from its owner)."""
    if owner_email == "":
        item.owner_id = None
        return
    owner = session.scalars(select(User).where(User.email == owner_email.strip().lower())).first()
    if owner is None:  # 409 like any other non-owner: a 404 would say the item is gone
        problems.disallowed["owner"] = f"no user {owner_email}"
    elif not owner.active or not permissions.can_change_model(session, owner, item.model_id):
        problems.disallowed["owner"] = "must be one of this model's owners or an admin"
    else:
        item.owner_id = owner.id
