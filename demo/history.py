"""The demo's history in bulk: cases with their decisions, the exceptions they raised, and their outcomes."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from demo.catalog import CLAIMS, RULES, SEED_ACTOR
from feedback.audit import Actor
from feedback.decision_exceptions import bulk as exception_bulk
from feedback.decision_exceptions import services as decision_exceptions
from feedback.models import DecisionException, User
from feedback.outcomes import bulk as outcome_bulk
from feedback.review import bulk as decision_bulk
from feedback.review import ingest
from feedback.schemas import OutcomeIn, RecommendationIn

# Why a decision raised an exception, in the words of its reviewer (or of the audit sample).
REASONS = {"reviewer_escalation": "Needs a senior look", "audit_sample": "random second review of an accepted case"}


# Typical hours to resolve an exception, by kind (log-normal around these medians).
RESOLUTION_MEDIAN_HOURS = {
    "reviewer_escalation": 7,
    "low_confidence": 5,
    "policy": 14,
    "missing_data": 20,
    "model_error": 3,
    "audit_sample": 30,
}


class World:
    """What the history needs to keep between chunks: who works here, and when now is."""

    def __init__(
        self,
        rng: random.Random,
        now: datetime,
        reviewers: list[User],
        handlers: list[User],
        personality: dict[int, float],
    ) -> None:
        self.rng, self.now, self.reviewers, self.handlers, self.personality = rng, now, reviewers, handlers, personality

    def store_history(self, session: Session, recs: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> None:
        """Decided cases, the exceptions their escalations and audit samples opened, and their outcomes."""
        ids = insert_history(session, recs, decisions)
        raised = []
        for rec_id, rec, dec in zip(ids, recs, decisions, strict=True):
            kind = None
            if dec["action"] == "escalate":
                kind = "reviewer_escalation"
            elif dec["action"] == "accept" and decision_exceptions.in_audit_sample(
                rec_id, RULES[rec["model"].key]["audit_sample_rate"]
            ):
                kind = "audit_sample"
            if kind:
                raised.append(
                    (rec_id, rec, kind, dec["decided_at"], dec["reviewer_id"] if kind != "audit_sample" else None)
                )
        self._exceptions(session, raised)
        self._outcomes(session, ids, recs)
        session.commit()

    def store_routed(self, session: Session, recs: list[dict[str, Any]]) -> None:
        """Cases the ingest rules sent to the exceptions queue, worked by the handlers."""
        ids = insert_history(session, recs, [])
        rows = session.execute(
            select(
                DecisionException.id,
                DecisionException.recommendation_id,
                DecisionException.kind,
                DecisionException.opened_at,
            ).where(DecisionException.recommendation_id.in_(ids))
        ).all()
        truth = {rec_id: rec["truth"] for rec_id, rec in zip(ids, recs, strict=True)}
        self._work(session, [(exc_id, rec_id, kind, opened, truth[rec_id]) for exc_id, rec_id, kind, opened in rows])
        self._outcomes(session, ids, recs)
        session.commit()

    def _exceptions(
        self, session: Session, raised: list[tuple[int, dict[str, Any], str, datetime, int | None]]
    ) -> None:
        """Open exceptions for escalations and audit samples, then let the handlers work them."""
        opened = [
            exception_bulk.Raised(
                recommendation_id=rec_id,
                model_id=rec["model"].id,
                site=rec["site"],
                kind=kind,
                reason="Needs a senior look"
                if kind == "reviewer_escalation"
                else "random second review of an accepted case",
                raised_by_id=raised_by,
                opened_at=when,
            )
            for rec_id, rec, kind, when, raised_by in raised
        ]
        ids = exception_bulk.open_exceptions(session, SEED_ACTOR, raised=opened)
        self._work(
            session,
            [
                (exc_id, r.recommendation_id, r.kind, r.opened_at, item[1]["truth"])
                for exc_id, r, item in zip(ids, opened, raised, strict=True)
            ],
        )

    def _work(self, session: Session, items: list[tuple[int, int, str, datetime, str]]) -> None:
        """Handlers resolve most exceptions after a while; the recent ones are still open or in progress."""
        handled = []
        for exc_id, rec_id, kind, opened, truth in items:
            handler = self.rng.choice(self.handlers)
            hours = self.rng.lognormvariate(math.log(RESOLUTION_MEDIAN_HOURS[kind]), 0.9)
            resolved_at = opened + timedelta(hours=hours)
            if resolved_at < self.now:
                handled.append(exception_bulk.Handled(exc_id, rec_id, kind, handler, resolved_at, truth))
            elif self.rng.random() < 0.5:
                handled.append(exception_bulk.Handled(exc_id, rec_id, kind, handler))
        exception_bulk.record_handling(session, handled=handled)

    def _outcomes(self, session: Session, ids: list[int], recs: list[dict[str, Any]]) -> None:
        """Most cases older than two weeks have learned their outcome from the ledger or chargebacks."""
        reported = []
        for rec_id, rec in zip(ids, recs, strict=True):
            observed = rec["created_at"] + timedelta(days=self.rng.uniform(5, 14))
            if observed < self.now - timedelta(days=1) and self.rng.random() < 0.85:
                source = "claims_ledger" if rec["model"].key == CLAIMS.key else "chargebacks"
                item = OutcomeIn(recommendation_id=rec_id, outcome=rec["truth"], observed_at=observed, source=source)
                reported.append(outcome_bulk.Reported(rec_id, item, received_at=observed))
        outcome_bulk.record_history(session, Actor(None, "outcome-feed"), reported=reported)


def insert_history(session: Session, recs: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> list[int]:
    """Store recommendations through the ingest path (rules, exceptions, audit), then their decisions."""
    rows = []
    for rec in recs:
        spec = RecommendationIn(
            model=rec["model"].key,
            model_version=rec["version"].version,
            external_id=rec["external_id"],
            subject=rec["subject"],
            site=rec["site"],
            segment=rec["segment"],
            recommended_action=rec["recommended_action"],
            confidence=rec["confidence"],
            explanation=rec["explanation"],
            features=rec["features"],
            flags=rec.get("flags", []),
            error=rec.get("error"),
            due_at=rec["due_at"],
        )
        row = ingest.recommendation_row(spec, rec["version"], ingest.payload_hash(spec))
        row["created_at"] = rec["created_at"]
        rows.append(row)
    for row, dec in zip(rows, decisions, strict=False):
        row["raised"] = None  # history decided in the queue passed the rules of its day
        row["status"] = "escalated" if dec["action"] == "escalate" else "decided"
    ids = ingest.store_recommendations(session, SEED_ACTOR, rows=rows)
    if decisions:
        for rec_id, dec, rec in zip(ids, decisions, recs, strict=True):
            dec.update(recommendation_id=rec_id, model_id=rec["model"].id, model_version_id=rec["version"].id)
        cases = [
            {
                "model_id": rec["model"].id,
                "model_version_id": rec["version"].id,
                "model_version": rec["version"].version,
                "site": rec["site"],
                "confidence": rec["confidence"],
                "segment": rec["segment"],
                "recommended_action": rec["recommended_action"],
            }
            for rec in recs
        ]
        decision_bulk.insert_decisions(session, decisions=decisions, cases=cases)
    return ids
