"""Claims: a reviewer holds a case for a few minutes so that two people never decide it at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, case, literal, or_, select, update
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.accounts.services import actor_of
from feedback.audit import Change
from feedback.db import UTCDateTime, utcnow
from feedback.errors import (
    AlreadyDecided,
    ClaimedByOther,
    NotFound,
)
from feedback.impact import assignment as arms
from feedback.models import (
    Recommendation,
    User,
)
from feedback.permissions import Action
from feedback.review import queries as review_queries

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


CLAIM_MINUTES = 5


def _claimable(reviewer: User, now: datetime) -> ColumnElement[bool]:
    """SQL condition: open and free, expired, or already this reviewer's."""
    return (Recommendation.status == "open") & or_(
        Recommendation.claimed_by_id.is_(None),
        Recommendation.claimed_by_id == reviewer.id,
        Recommendation.claim_expires_at < now,
    )


def claim_case(session: Session, actor: User, *, recommendation_id: int, now: datetime | None = None) -> Recommendation:
    """Claim a case for a few minutes (renewing one's own claim); raise if someone else holds it."""
    permissions.require(actor, Action.REVIEW)
    now = now or utcnow()
    claimed = _try_claim(session, Recommendation.id == recommendation_id, actor, now)
    rec = review_queries.case_detail(session, recommendation_id)  # with what the review screen shows
    if rec is None:
        raise NotFound(f"no case {recommendation_id}")
    if claimed is None:
        session.rollback()
        if rec.status != "open":
            raise AlreadyDecided(closed_message(rec))
        raise ClaimedByOther(claimed_message(rec, actor))
    _finish_claim(session, rec, actor, now, claimed[1])
    return rec


def claim_next(
    session: Session, actor: User, *, model_id: int | None = None, site: str | None = None, after_id: int | None = None
) -> Recommendation | None:
    """Claim the most urgent open case that nobody else holds (optionally filtered)."""
    rec, changes = claim_next_uncommitted(session, actor, model_id=model_id, site=site, after_id=after_id)
    if rec is None:
        session.rollback()
        return None
    # The audit append comes last because it locks the chain head until the commit.
    audit.record(session, actor_of(actor), changes)
    session.commit()
    return rec


def claim_next_uncommitted(
    session: Session, actor: User, *, model_id: int | None = None, site: str | None = None, after_id: int | None = None
) -> tuple[Recommendation | None, list[Change]]:
    """claim_next in the caller's transaction: the case (or None) and the audit events for the caller to record.

    A decision on the review screen claims the next case this way, so both are one commit.
    """
    permissions.require(actor, Action.REVIEW)
    now = utcnow()
    query = select(Recommendation.id).where(_claimable(actor, now))
    if model_id:
        query = query.where(Recommendation.model_id == model_id)
    if site:
        query = query.where(Recommendation.site == site)
    if after_id:
        query = query.where(Recommendation.id != after_id)
    # SKIP LOCKED (PostgreSQL): reviewers asking at once get different cases instead of queueing on one.
    # Found and claimed in one statement: one round trip, and only the claimed row is locked.
    most_urgent = query.order_by(*review_queries.MOST_URGENT_FIRST).limit(1).with_for_update(skip_locked=True)
    claimed = _try_claim(session, Recommendation.id == most_urgent.scalar_subquery(), actor, now)
    if claimed is None:
        return None, []
    # Loaded with everything the review screen shows, so the caller need not read it again.
    rec = review_queries.case_detail(session, claimed[0])
    assert rec is not None
    arms.expose(session, rec, actor.id, now)
    return rec, [Change("case.claimed", "recommendation", rec.id)] if claimed[1] else []


def _finish_claim(session: Session, rec: Recommendation, reviewer: User, now: datetime, new: bool) -> None:
    """Record the exposure and (for a new claim) the audit event, then commit.

    The audit append comes last because it locks the chain head until the commit.
    """
    arms.expose(session, rec, reviewer.id, now)
    if new:
        audit.record(session, actor_of(reviewer), [Change("case.claimed", "recommendation", rec.id)])
    session.commit()


def _try_claim(session: Session, which: ColumnElement[bool], reviewer: User, now: datetime) -> tuple[int, bool] | None:
    """Atomically claim or renew the case `which` picks: its id and whether the claim is new (not a
    renewal), or None when there is no such claimable case (someone else holds it, or it is closed)."""
    result = session.execute(
        update(Recommendation)
        .where(which, _claimable(reviewer, now))
        .values(
            claimed_at=case(
                (
                    (Recommendation.claimed_by_id == reviewer.id) & (Recommendation.claim_expires_at >= now),
                    Recommendation.claimed_at,
                ),
                else_=literal(now, UTCDateTime()),
            ),
            claimed_by_id=reviewer.id,
            claim_expires_at=now + timedelta(minutes=CLAIM_MINUTES),
            row_version=Recommendation.row_version + 1,
        )
        .returning(Recommendation.id, Recommendation.claimed_at)
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        return None
    return result.id, bool(result.claimed_at == now)


def release_claim(session: Session, actor: User, *, recommendation_id: int) -> None:
    """Give a claimed case back to the queue."""
    permissions.require(actor, Action.REVIEW)
    released = session.execute(
        update(Recommendation)
        .where(
            Recommendation.id == recommendation_id,
            Recommendation.claimed_by_id == actor.id,
            Recommendation.status == "open",
        )
        .values(claimed_by_id=None, claimed_at=None, claim_expires_at=None, row_version=Recommendation.row_version + 1)
        .returning(Recommendation.id)
        .execution_options(synchronize_session=False)
    ).first()
    if released is not None:
        audit.record(session, actor_of(actor), [Change("case.released", "recommendation", recommendation_id)])
    session.commit()


def claim_stamp(rec: Recommendation) -> int | None:
    """The claim the case is held under, as microseconds since the epoch of its start (None: unclaimed).

    A new claim (after a release, an expiry taken over by someone else, or an undo) has a new stamp;
    renewing one's own claim keeps it.
    """
    if rec.claimed_at is None:
        return None
    return (rec.claimed_at - EPOCH) // timedelta(microseconds=1)


def claimed_message(rec: Recommendation, viewer: User) -> str:
    """Who holds a case and until when, naming them only to those who may see who they are."""
    holder = permissions.person_name(viewer, rec.claimed_by) or "another reviewer"
    until = f" until {rec.claim_expires_at:%H:%M} UTC" if rec.claim_expires_at else ""
    return f"{holder} is working on case {rec.external_id}{until}"


def closed_message(rec: Recommendation) -> str:
    """Why a case can no longer be countersigned in the queue."""
    if rec.status == "exception":
        return f"case {rec.external_id} was routed to the exceptions queue"
    return f"case {rec.external_id} has already been decided"
