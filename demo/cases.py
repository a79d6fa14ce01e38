"""One demo case at a time: a claim or a fraud alert, its recommendation, and the decision a reviewer takes."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from demo.catalog import CLAIMS, RULES, SITES
from demo.experiments import AI_HANDLING_FACTOR
from feedback.models import Model, ModelVersion, User
from feedback.wording import with_article


def break_a_rule(rng: random.Random, rec: dict[str, Any]) -> bool:
    """Make about one case in thirty break an ingest rule (model error, policy flag, missing input)."""
    roll = rng.random()
    if roll < 0.005:
        rec.update(recommended_action=None, confidence=None, explanation=None, error="feature store timed out")
    elif roll < 0.017:
        rec["flags"] = ["high_value" if rec["model"].key == CLAIMS.key else "sanctions_hit"]
    elif roll < 0.027:
        rec["features"] = {k: v for k, v in rec["features"].items() if k not in ("policy_age_months", "amount")}
    else:
        return bool(rec["confidence"] < RULES[rec["model"].key]["min_confidence"])  # low confidence routes anyway
    return True


def _pick_reviewer(rng: random.Random, reviewers: list[User]) -> User:
    """Any of a site's reviewers; workloads differ a little."""
    return (
        reviewers[min(int(rng.expovariate(1 / 7)), len(reviewers) - 1)] if rng.random() < 0.3 else rng.choice(reviewers)
    )


def _decide(
    rng: random.Random,
    p_wrong: float,
    recommended: str,
    actions: list[str],
    reasons: list[str],
    reason_weights: list[float],
    reviewer: User,
    personality: dict[int, float],
    created: datetime,
) -> dict[str, Any]:
    """A plausible human decision, and the truth it will later be judged against (key `truth`).

    The AI is wrong with probability `p_wrong`; reviewers catch most of those (some more than
    others) and occasionally override a correct recommendation.
    """
    truth = recommended if rng.random() >= p_wrong else rng.choice([a for a in actions if a != recommended])
    care = personality[reviewer.id]
    fast = care < 0.2
    opened = created + timedelta(minutes=rng.expovariate(1 / 90))
    seconds = rng.lognormvariate(math.log(6 if fast else 50), 0.5)
    p_override = min(0.75 * care, 0.95) if truth != recommended else min(0.04 * care, 0.5)
    roll = rng.random()
    if roll < 0.03 and not fast:
        action, final, reason, note = "escalate", None, None, "Needs a senior look"
        seconds *= 2
    elif roll < 0.03 + p_override:
        action = "override"
        others = [a for a in actions if a != recommended]
        final = truth if truth != recommended and rng.random() < 0.85 else rng.choice(others)
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
        "truth": truth,
    }


def claim_case(
    rng: random.Random,
    n: int,
    model: Model,
    version: ModelVersion,
    created: datetime,
    staff: dict[str, list[User]],
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
    p = 0.07 * (2 - confidence)
    if band == "over_10k" and version.version == "v1":
        p = 0.6 if site == "Leeds" else 0.45
    reason_weights: list[float] = (
        [6, 1, 1, 1, 1, 1] if band == "over_10k" and version.version == "v1" else [2, 2, 1.5, 2, 2, 1]
    )
    segment = {
        "claim_band": band,
        "channel": rng.choice(("web", "phone", "broker")),
        "product": rng.choices(("motor", "home", "travel"), weights=(5, 3, 2))[0],
    }
    reviewer = _pick_reviewer(rng, staff[site])
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


def fraud_case(
    rng: random.Random,
    n: int,
    model: Model,
    version: ModelVersion,
    created: datetime,
    staff: dict[str, list[User]],
    personality: dict[int, float],
    rollout: dict[str, datetime | None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One fraud-alert recommendation and its decision (unaided before the site's go-live)."""
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
    p = 0.09 * (2 - confidence) * (1.8 if category == "travel" else 1)
    segment = {"merchant_category": category, "card_present": "yes" if card_present else "no"}
    reviewer = _pick_reviewer(rng, staff[site])
    rec = {
        "model": model,
        "version": version,
        "external_id": f"TXN-{n:06d}",
        "subject": f"Card payment £{amount:,.2f} at {with_article(category)} merchant",
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
    decision = _decide(
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
    go_live = rollout.get(site)
    if go_live is not None and decision["opened_at"] >= go_live:
        scale_handling(decision, AI_HANDLING_FACTOR)
    else:
        decide_unaided(decision, recommended)
    return rec, decision


def scale_handling(decision: dict[str, Any], factor: float) -> None:
    """Make the reviewer take `factor` times as long over the case."""
    opened = decision["opened_at"]
    decision["decided_at"] = opened + (decision["decided_at"] - opened) * factor


def decide_unaided(decision: dict[str, Any], recommended: str) -> None:
    """The AI was hidden: the same human judgement, recorded as an unaided decision."""
    decision["ai_shown"] = False
    if decision["action"] != "escalate":
        decision["action"] = "accept" if decision["final_action"] == recommended else "override"
        decision["reason_code"] = None
