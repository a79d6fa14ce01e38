"""A realistic demo: claims triage and payment-fraud alerts at six sites over ninety days.

Patterns worth finding: claims v1 is poor on claims over 10k (reviewers override it for
missing context, most of all in Leeds) and v2 fixes that; low confidence draws more
overrides; reviewer03 rubber-stamps in seconds while reviewer11 overrides twice as often.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from feedback import audit, services
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.models import Decision, Model, ModelVersion, User
from feedback.schemas import ModelIn, RecommendationIn
from feedback.security import hash_password

DEMO_PASSWORD = "countersign-demo"
SEED_ACTOR = Actor(None, "seed-demo")
SITES = ("Leeds", "Manchester", "Bristol", "Glasgow", "Cardiff", "Belfast")
STAFF = (
    ("admin@countersign.test", "Ada Admin", "admin"),
    ("owner@countersign.test", "Omar Owner", "model_owner"),
    ("analyst@countersign.test", "Ana Analyst", "analyst"),
    ("handler@countersign.test", "Hana Handler", "exception_handler"),
)
CLAIMS = ModelIn.model_validate(
    dict(
        key="claims_triage",
        name="Claims triage",
        description="Recommends whether to pay, review or deny an insurance claim.",
        actions=["pay", "review", "deny"],
        reason_codes=[
            {"code": "missing_context", "label": "Missing context"},
            {"code": "policy_exception", "label": "Policy exception applies"},
            {"code": "fraud_signal", "label": "Fraud signal the model missed"},
            {"code": "customer_history", "label": "Customer history"},
            {"code": "document_mismatch", "label": "Documents don't match"},
            {"code": "other", "label": "Other"},
        ],
    )
)
FRAUD = ModelIn.model_validate(
    dict(
        key="fraud_alert",
        name="Payment fraud alerts",
        description="Decides whether a card payment raises a fraud alert.",
        actions=["raise_alert", "dismiss"],
        reason_codes=[
            {"code": "known_customer", "label": "Known customer pattern"},
            {"code": "trusted_merchant", "label": "Trusted merchant"},
            {"code": "insufficient_evidence", "label": "Insufficient evidence"},
            {"code": "confirmed_elsewhere", "label": "Confirmed by another team"},
            {"code": "other", "label": "Other"},
        ],
    )
)


def seed(
    session: Session, *, days: int = 90, per_day: int = 420, rng_seed: int = 7, progress: Callable[[str], None] = print
) -> bool:
    """Create the demo scenario; return False (changing nothing) if it is already there."""
    if session.scalar(select(Model.id).where(Model.key == CLAIMS.key)) is not None:
        return False
    rng = random.Random(rng_seed)
    now = utcnow().replace(second=0, microsecond=0)

    progress("users…")
    reviewers = _users(session)
    progress("models and versions…")
    claims = services.register_model(session, SEED_ACTOR, CLAIMS)
    fraud = services.register_model(session, SEED_ACTOR, FRAUD)
    v1 = _version(session, claims, "v1", "retired", now - timedelta(days=days))
    v2 = _version(session, claims, "v2", "production", now - timedelta(days=days // 2))
    f1 = _version(session, fraud, "2026.1", "production", now - timedelta(days=days))
    session.commit()

    personality = {r.id: math.exp(rng.gauss(0, 0.3)) for r in reviewers}
    personality[reviewers[2].id] = 0.08  # reviewer03 rubber-stamps
    personality[reviewers[10].id] = 2.0  # reviewer11 overrides often
    counter = 0
    chunk_days = 10
    for start in range(days, 0, -chunk_days):
        recs: list[dict[str, Any]] = []
        decided: list[dict[str, Any]] = []
        for day in range(start, max(start - chunk_days, 0), -1):
            midnight = (now - timedelta(days=day)).replace(hour=0, minute=0)
            for _ in range(per_day):
                counter += 1
                created = midnight + timedelta(minutes=rng.uniform(7 * 60, 19 * 60))
                if rng.random() < 0.7:
                    version = v1 if day > days // 2 else v2
                    rec, dec = _claim_case(rng, counter, claims, version, created, reviewers, personality)
                else:
                    rec, dec = _fraud_case(rng, counter, fraud, f1, created, reviewers, personality)
                recs.append(rec)
                decided.append(dec)
        _store(session, recs, decided, reviewers)
        progress(f"history: {days - max(start - chunk_days, 0)}/{days} days, {counter} decided cases")

    live = []
    for i in range(160):
        counter += 1
        created = now - timedelta(minutes=rng.uniform(5, 10 * 60))
        if rng.random() < 0.7:
            rec, _ = _claim_case(rng, counter, claims, v2, created, reviewers, personality)
        else:
            rec, _ = _fraud_case(rng, counter, fraud, f1, created, reviewers, personality)
        rec["due_at"] = created + timedelta(hours=rng.choice((4, 8, 24, 24, 48)))
        live.append(rec)
        if i % 40 == 0:
            rec["due_at"] = now - timedelta(minutes=rng.uniform(10, 300))  # a few already overdue
    _store(session, live, [], reviewers)
    progress(f"live queue: {len(live)} open cases")
    return True


def _users(session: Session) -> list[User]:
    """Staff accounts plus twenty frontline reviewers; returns the reviewers."""
    password_hash = hash_password(DEMO_PASSWORD)
    people = list(STAFF) + [
        (f"reviewer{n:02d}@countersign.test", f"Reviewer {n:02d}", "frontline") for n in range(1, 21)
    ]
    users = [User(email=e, name=n, role=r, password_hash=password_hash) for e, n, r in people]
    session.add_all(users)
    session.flush()
    audit.record(
        session, SEED_ACTOR, [Change("user.created", "user", u.id, {"email": u.email, "role": u.role}) for u in users]
    )
    session.commit()
    return [u for u in users if u.role == "frontline"]


def _version(session: Session, model: Model, label: str, stage: str, created: datetime) -> ModelVersion:
    """A version registered at a given time in the past."""
    version = ModelVersion(model_id=model.id, version=label, stage=stage, created_at=created)
    session.add(version)
    session.flush()
    audit.record(
        session,
        SEED_ACTOR,
        [
            Change(
                "model_version.registered",
                "model_version",
                version.id,
                {"model": model.key, "version": label, "stage": stage},
            )
        ],
    )
    return version


def _pick_reviewer(rng: random.Random, reviewers: list[User]) -> User:
    """Any reviewer; workloads differ a little."""
    return (
        reviewers[min(int(rng.expovariate(1 / 7)), len(reviewers) - 1)] if rng.random() < 0.3 else rng.choice(reviewers)
    )


def _decide(
    rng: random.Random,
    p_override: float,
    recommended: str,
    actions: list[str],
    reasons: list[str],
    reason_weights: list[float],
    reviewer: User,
    personality: dict[int, float],
    created: datetime,
) -> dict[str, Any]:
    """A plausible human decision on a case."""
    p = min(p_override * personality[reviewer.id], 0.95)
    roll = rng.random()
    opened = created + timedelta(minutes=rng.expovariate(1 / 90))
    fast = personality[reviewer.id] < 0.2
    seconds = rng.lognormvariate(math.log(6 if fast else 50), 0.5)
    if roll < 0.03 and not fast:
        action, final, reason, note = "escalate", None, None, "Needs a senior look"
        seconds *= 2
    elif roll < 0.03 + p:
        action = "override"
        final = rng.choice([a for a in actions if a != recommended])
        reason = rng.choices(reasons, weights=reason_weights)[0]
        note = ""
        seconds *= 1.8
    else:
        action, final, reason, note = "accept", recommended, None, ""
    return {
        "reviewer_id": reviewer.id,
        "action": action,
        "final_action": final,
        "reason_code": reason,
        "note": note,
        "opened_at": opened,
        "decided_at": opened + timedelta(seconds=seconds),
        "ai_shown": True,
        "channel": "ui",
    }


def _claim_case(
    rng: random.Random,
    n: int,
    model: Model,
    version: ModelVersion,
    created: datetime,
    reviewers: list[User],
    personality: dict[int, float],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One claims-triage recommendation and its decision."""
    site = rng.choices(SITES, weights=(3, 3, 2, 2, 1, 1))[0]
    band = rng.choices(("under_1k", "1k_10k", "over_10k"), weights=(5, 4, 1.5))[0]
    amount = {
        "under_1k": rng.uniform(80, 999),
        "1k_10k": rng.uniform(1000, 9999),
        "over_10k": rng.uniform(10000, 60000),
    }[band]
    features = {
        "amount": round(amount, 2),
        "policy_age_months": int(rng.expovariate(1 / 30)) + 1,
        "prior_claims": min(int(rng.expovariate(1 / 0.8)), 9),
        "documents_complete": rng.random() < 0.85,
        "days_since_incident": int(rng.expovariate(1 / 6)),
    }
    score = (
        0.9
        - 0.25 * (band == "over_10k")
        - 0.3 * (not features["documents_complete"])
        - 0.08 * features["prior_claims"]
        + rng.gauss(0, 0.15)
    )
    recommended = "pay" if score > 0.55 else "review" if score > 0.25 else "deny"
    confidence = round(min(max(0.5 + abs(score - 0.5) * 0.9 + rng.gauss(0, 0.08), 0.35), 0.99), 3)
    factors: list[dict[str, Any]] = [
        {
            "name": "Claim amount",
            "value": features["amount"],
            "contribution": round(-0.25 * (band == "over_10k") - 0.03 * (band == "1k_10k") + rng.gauss(0, 0.02), 3),
        },
        {
            "name": "Documents complete",
            "value": features["documents_complete"],
            "contribution": round(0.12 if features["documents_complete"] else -0.3, 3),
        },
        {
            "name": "Prior claims",
            "value": features["prior_claims"],
            "contribution": round(-0.08 * features["prior_claims"] + 0.04, 3),
        },
        {
            "name": "Policy age (months)",
            "value": features["policy_age_months"],
            "contribution": round(min(features["policy_age_months"], 60) / 400, 3),
        },
    ]
    factors.sort(key=lambda f: -abs(float(f["contribution"])))
    p = 0.10 * (1.8 - confidence)
    if band == "over_10k" and version.version == "v1":
        p = 0.45 if site == "Leeds" else 0.33
    reason_weights: list[float] = (
        [6, 1, 1, 1, 1, 1] if band == "over_10k" and version.version == "v1" else [2, 2, 1.5, 2, 2, 1]
    )
    segment = {
        "claim_band": band,
        "channel": rng.choice(("web", "phone", "broker")),
        "product": rng.choices(("motor", "home", "travel"), weights=(5, 3, 2))[0],
    }
    reviewer = _pick_reviewer(rng, reviewers)
    rec = {
        "model": model,
        "version": version,
        "external_id": f"CLM-{n:06d}",
        "subject": f"{segment['product'].capitalize()} claim £{amount:,.0f}",
        "site": site,
        "segment": segment,
        "recommended_action": recommended,
        "confidence": confidence,
        "explanation": {"summary": _claim_summary(recommended, band, features), "factors": factors},
        "features": features,
        "created_at": created,
        "due_at": created + timedelta(hours=24),
    }
    return rec, _decide(
        rng,
        p,
        recommended,
        model.actions,
        [r["code"] for r in model.reason_codes],
        reason_weights,
        reviewer,
        personality,
        created,
    )


def _claim_summary(action: str, band: str, features: dict[str, Any]) -> str:
    """A short explanation in the model's words."""
    if action == "pay":
        return "Routine claim with complete documents and a clean history."
    if not features["documents_complete"]:
        return "Documents are incomplete; the claim cannot be paid automatically."
    if band == "over_10k":
        return "High-value claim: amount is far above the policy's typical claim."
    return "Claim history and amount suggest a manual check."


def _fraud_case(
    rng: random.Random,
    n: int,
    model: Model,
    version: ModelVersion,
    created: datetime,
    reviewers: list[User],
    personality: dict[int, float],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One fraud-alert recommendation and its decision."""
    site = rng.choices(SITES, weights=(2, 3, 2, 3, 1, 1))[0]
    category = rng.choices(("grocery", "travel", "electronics", "gambling"), weights=(4, 2, 2, 1))[0]
    amount = round(rng.lognormvariate(4.5, 1.1), 2)
    card_present = rng.random() < 0.55
    risk = 0.2 + 0.3 * (not card_present) + 0.25 * (category in ("electronics", "gambling")) + rng.gauss(0, 0.15)
    recommended = "raise_alert" if risk > 0.5 else "dismiss"
    confidence = round(min(max(0.55 + abs(risk - 0.5) + rng.gauss(0, 0.07), 0.4), 0.99), 3)
    features = {
        "amount": amount,
        "merchant_category": category,
        "card_present": card_present,
        "country_mismatch": rng.random() < 0.1,
    }
    factors = [
        {"name": "Card present", "value": card_present, "contribution": round(-0.2 if card_present else 0.28, 3)},
        {
            "name": "Merchant category",
            "value": category,
            "contribution": round(0.22 if category in ("electronics", "gambling") else -0.05, 3),
        },
        {"name": "Amount", "value": amount, "contribution": round(math.log10(amount + 1) / 20, 3)},
    ]
    p = 0.16 * (1.8 - confidence) * (1.6 if category == "travel" else 1)
    segment = {"merchant_category": category, "card_present": "yes" if card_present else "no"}
    reviewer = _pick_reviewer(rng, reviewers)
    rec = {
        "model": model,
        "version": version,
        "external_id": f"TXN-{n:06d}",
        "subject": f"Card payment £{amount:,.2f} at a {category} merchant",
        "site": site,
        "segment": segment,
        "recommended_action": recommended,
        "confidence": confidence,
        "explanation": {
            "summary": "Unusual for this card."
            if recommended == "raise_alert"
            else "Consistent with the card's history.",
            "factors": factors,
        },
        "features": features,
        "created_at": created,
        "due_at": created + timedelta(hours=4),
    }
    return rec, _decide(
        rng,
        p,
        recommended,
        model.actions,
        [r["code"] for r in model.reason_codes],
        [3, 2, 2, 1, 1],
        reviewer,
        personality,
        created,
    )


def _store(
    session: Session, recs: list[dict[str, Any]], decisions: list[dict[str, Any]], reviewers: list[User]
) -> None:
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
            due_at=rec["due_at"],
        )
        row = services.recommendation_row(spec, rec["version"], services.payload_hash(spec))
        row["created_at"] = rec["created_at"]
        rows.append(row)
    if decisions:
        for row, dec in zip(rows, decisions, strict=True):
            row["raised"] = None  # history was decided in the queue
            row["status"] = "escalated" if dec["action"] == "escalate" else "decided"
    ids = services.store_recommendations(session, SEED_ACTOR, rows)
    if decisions:
        for rec_id, dec in zip(ids, decisions, strict=True):
            dec["recommendation_id"] = rec_id
        session.execute(insert(Decision), decisions)
        by_reviewer: dict[int, list[Change]] = defaultdict(list)
        for dec in decisions:
            by_reviewer[dec["reviewer_id"]].append(
                Change(
                    f"decision.{dec['action']}",
                    "recommendation",
                    dec["recommendation_id"],
                    {
                        "final_action": dec["final_action"],
                        "reason_code": dec["reason_code"],
                        "ai_shown": True,
                        "channel": "ui",
                    },
                )
            )
        emails = {r.id: r.email for r in reviewers}
        for reviewer_id, changes in by_reviewer.items():
            audit.record(session, Actor(reviewer_id, emails[reviewer_id]), changes)
    session.commit()
