"""The demo's people, sites and models: claims triage and payment-fraud alerts at six sites."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.accounts import services as accounts
from feedback.accounts.security import hash_password
from feedback.accounts.services import ImportedUser
from feedback.audit import Actor
from feedback.catalog import services as catalog
from feedback.decision_exceptions import services as decision_exceptions
from feedback.models import Model, ModelVersion, User
from feedback.schemas import ModelIn, ModelVersionIn, VersionRulesIn

DEMO_PASSWORD = "countersign-demo"


SEED_ACTOR = Actor(None, "seed-demo")


# Reviewers work at one site each (20 in all).
STAFF_PER_SITE = (4, 5, 3, 4, 2, 2)


SITES = ("Leeds", "Manchester", "Bristol", "Glasgow", "Cardiff", "Belfast")


STAFF = (
    ("admin@countersign.test", "Ada Admin", "admin"),
    ("owner@countersign.test", "Omar Owner", "model_owner"),
    ("analyst@countersign.test", "Ana Analyst", "analyst"),
    ("handler@countersign.test", "Hana Handler", "exception_handler"),
    ("lead@countersign.test", "Lena Lead", "exception_handler"),
)


RULES: dict[str, dict[str, Any]] = {
    "claims_triage": {
        "min_confidence": 0.55,
        "policy_flags": ["high_value", "litigation"],
        "required_features": ["amount", "policy_age_months"],
        "audit_sample_rate": 0.03,
    },
    "fraud_alert": {
        "min_confidence": 0.5,
        "policy_flags": ["sanctions_hit"],
        "required_features": ["amount"],
        "audit_sample_rate": 0.02,
    },
}


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
        action_labels={"pay": "Pay", "review": "Send for review", "deny": "Deny"},
        segment_labels={
            "claim_band": {
                "label": "Claim band",
                "values": {"under_1k": "under £1k", "1k_10k": "£1k to £10k", "over_10k": "over £10k"},
            },
            "channel": {"label": "Channel"},
            "product": {"label": "Product"},
        },
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
        action_labels={"raise_alert": "Raise an alert", "dismiss": "Dismiss"},
        segment_labels={
            "merchant_category": {"label": "Merchant category"},
            "card_present": {"label": "Card present"},
        },
    )
)


def build_catalog(session: Session, now: datetime, days: int) -> tuple[Model, Model, tuple[ModelVersion, ...]]:
    """The two models with their owners, versions (claims v1, v2; fraud 2026.1), rules and SLAs."""
    claims = catalog.register_model(session, SEED_ACTOR, spec=CLAIMS)
    fraud = catalog.register_model(session, SEED_ACTOR, spec=FRAUD)
    admin = session.scalars(select(User).where(User.role == "admin")).one()
    owners = [email for email, _, role in STAFF if role == "model_owner"]
    for model in (claims, fraud):  # only a model's owners (and admins) change it
        catalog.set_model_owners(session, admin, model_key=model.key, owner_emails=owners)
    v1 = _version(session, claims, "v1", "retired", now - timedelta(days=days))
    v2 = _version(session, claims, "v2", "production", now - timedelta(days=days // 2))
    f1 = _version(session, fraud, "2026.1", "production", now - timedelta(days=days))
    session.commit()

    for version, key in ((v1, CLAIMS.key), (v2, CLAIMS.key), (f1, FRAUD.key)):
        rules = VersionRulesIn.model_validate(RULES[key])
        decision_exceptions.set_version_rules(session, SEED_ACTOR, version_id=version.id, rules=rules)
    decision_exceptions.set_sla_policies(
        session,
        SEED_ACTOR,
        model=claims,
        hours={("policy", "high"): 12, ("model_error", "high"): 4, ("missing_data", "medium"): 36},
    )
    return claims, fraud, (v1, v2, f1)


def staff_by_site(reviewers: list[User]) -> dict[str, list[User]]:
    """Each site's reviewers, in the order of STAFF_PER_SITE."""
    staff, start = {}, 0
    for site, count in zip(SITES, STAFF_PER_SITE, strict=True):
        staff[site] = reviewers[start : start + count]
        start += count
    return staff


def create_users(session: Session) -> list[User]:
    """Staff accounts plus twenty frontline reviewers, all with the demo's password; returns the reviewers."""
    password_hash = hash_password(DEMO_PASSWORD)  # hashed once: argon2 is slow on purpose
    people = list(STAFF) + [
        (f"reviewer{n:02d}@countersign.test", f"Reviewer {n:02d}", "frontline") for n in range(1, 21)
    ]
    imported = [ImportedUser(email, name, role, password_hash) for email, name, role in people]
    users = accounts.import_users(session, SEED_ACTOR, people=imported)
    return [u for u in users if u.role == "frontline"]


def _version(session: Session, model: Model, label: str, stage: str, created: datetime) -> ModelVersion:
    """A version registered (by the operator's seed, so at any stage), dated into the story's past."""
    version = catalog.add_model_version(
        session, SEED_ACTOR, model_key=model.key, spec=ModelVersionIn(version=label, stage=stage)
    )
    version.created_at = created
    return version
