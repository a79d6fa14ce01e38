"""A realistic demo: claims triage and payment-fraud alerts at six sites over ninety days.

Patterns worth finding: claims v1 is poor on claims over 10k (reviewers override it for
missing context, most of all in Leeds) and v2 fixes that; low confidence draws more
overrides; reviewer03 rubber-stamps in seconds while reviewer11 overrides twice as often.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from feedback import audit
from feedback.accounts.security import hash_password
from feedback.audit import Actor, Change
from feedback.catalog import services as catalog
from feedback.db import Base, utcnow
from feedback.decision_exceptions import services as decision_exceptions
from feedback.errors import ValidationFailed
from feedback.models import Decision, DecisionException, Experiment, Exposure, Model, ModelVersion, Outcome, User
from feedback.overrides import guardrails, rollup
from feedback.review import ingest
from feedback.schemas import ModelIn, RecommendationIn
from feedback.wording import with_article

DEMO_PASSWORD = "countersign-demo"
SEED_ACTOR = Actor(None, "seed-demo")
# Reviewers work at one site each (20 in all).
STAFF_PER_SITE = (4, 5, 3, 4, 2, 2)
# The fraud model's AI is rolled out site by site; where it is shown, reviewers handle a case
# in this fraction of the time (the true effect the impact page should recover: -15%).
AI_HANDLING_FACTOR = 0.85
ROLLOUT_SHARES = {"Leeds": 0.25, "Manchester": 0.25, "Bristol": 0.5, "Glasgow": 0.5, "Cardiff": 0.75, "Belfast": None}
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
# Typical hours to resolve an exception, by kind (log-normal around these medians).
RESOLUTION_MEDIAN_HOURS = {
    "reviewer_escalation": 7,
    "low_confidence": 5,
    "policy": 14,
    "missing_data": 20,
    "model_error": 3,
    "audit_sample": 30,
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


def _catalog(session: Session, now: datetime, days: int) -> tuple[Model, Model, tuple[ModelVersion, ...]]:
    """The two models with their owners, versions (claims v1, v2; fraud 2026.1), rules and SLAs."""
    claims = catalog.register_model(session, SEED_ACTOR, CLAIMS)
    fraud = catalog.register_model(session, SEED_ACTOR, FRAUD)
    admin = session.scalars(select(User).where(User.role == "admin")).one()
    owners = [email for email, _, role in STAFF if role == "model_owner"]
    for model in (claims, fraud):  # only a model's owners (and admins) change it
        catalog.set_model_owners(session, admin, model_key=model.key, owner_emails=owners)
    v1 = _version(session, claims, "v1", "retired", now - timedelta(days=days))
    v2 = _version(session, claims, "v2", "production", now - timedelta(days=days // 2))
    f1 = _version(session, fraud, "2026.1", "production", now - timedelta(days=days))
    session.commit()

    for version, key in ((v1, CLAIMS.key), (v2, CLAIMS.key), (f1, FRAUD.key)):
        version.rules = RULES[key]
    decision_exceptions.set_sla_policies(
        session,
        SEED_ACTOR,
        model=claims,
        hours={("policy", "high"): 12, ("model_error", "high"): 4, ("missing_data", "medium"): 36},
    )
    return claims, fraud, (v1, v2, f1)


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
    claims, fraud, (v1, v2, f1) = _catalog(session, now, days)
    handlers = list(session.scalars(select(User).where(User.role == "exception_handler")))

    personality = {r.id: math.exp(rng.gauss(0, 0.3)) for r in reviewers}
    personality[reviewers[2].id] = 0.08  # reviewer03 rubber-stamps
    personality[reviewers[10].id] = 2.0  # reviewer11 overrides often
    world = _World(rng, now, reviewers, handlers, personality)
    staff = _staff_by_site(reviewers)
    rollout = _rollout_schedule(now, days)
    ab_test = _ab_experiment(session, claims, now, days)
    exposed: list[tuple[dict[str, Any], str]] = []
    counter = 0
    chunk_days = 10
    for start in range(days, 0, -chunk_days):
        recs: list[dict[str, Any]] = []
        decided: list[dict[str, Any]] = []
        routed: list[dict[str, Any]] = []
        for day in range(start, max(start - chunk_days, 0), -1):
            midnight = (now - timedelta(days=day)).replace(hour=0, minute=0)
            for _ in range(per_day):
                counter += 1
                created = midnight + timedelta(minutes=rng.uniform(7 * 60, 19 * 60))
                if rng.random() < 0.7:
                    version = v1 if day > days // 2 else v2
                    rec, dec = _claim_case(rng, counter, claims, version, created, staff, personality)
                    if ab_test.window[0] <= created < ab_test.window[1]:
                        arm = ab_test.arm(dec["reviewer_id"])
                        if arm == "control":  # unaided: the same judgement, more slowly
                            _unaided(dec, rec["recommended_action"])
                            _scale_handling(dec, 1 / AI_HANDLING_FACTOR)
                        exposed.append((dec, arm))
                else:
                    rec, dec = _fraud_case(rng, counter, fraud, f1, created, staff, personality, rollout)
                rec["truth"] = dec.pop("truth")
                if _break_a_rule(rng, rec):  # the ingest rules send it to the exceptions queue
                    routed.append(rec)
                else:
                    recs.append(rec)
                    decided.append(dec)
        world.store_history(session, recs, decided)
        world.store_routed(session, routed)
        ab_test.record_exposures(session, exposed)
        exposed = []
        progress(f"history: {days - max(start - chunk_days, 0)}/{days} days, {counter} cases")

    live = []
    for i in range(160):
        counter += 1
        created = now - timedelta(minutes=rng.uniform(5, 10 * 60))
        if rng.random() < 0.7:
            rec, _ = _claim_case(rng, counter, claims, v2, created, staff, personality)
        else:
            rec, _ = _fraud_case(rng, counter, fraud, f1, created, staff, personality, rollout)
        rec["due_at"] = created + timedelta(hours=rng.choice((4, 8, 24, 24, 48)))
        live.append(rec)
        if i % 40 == 0:
            rec["due_at"] = now - timedelta(minutes=rng.uniform(10, 300))  # a few already overdue
    _store(session, live, [])
    session.commit()
    progress(f"live queue: {len(live)} new cases (the ingest rules routed some to exceptions)")

    # v1's trouble with large claims shows in its overall override rate: its guardrail trips.
    for version, kind, window_size, threshold, pause in (
        (v1, "override_rate_above", 500, 0.12, True),
        (v2, "override_rate_above", 500, 0.2, True),
        (v2, "control_chart", 28, None, False),
        (f1, "accuracy_below", 300, 0.8, False),
    ):
        guardrails.add_guardrail(
            session,
            SEED_ACTOR,
            version_id=version.id,
            kind=kind,
            window_size=window_size,
            threshold=threshold,
            auto_pause=pause,
        )
    alerts = guardrails.evaluate(session, [v1.id, v2.id, f1.id], force=True)
    progress(f"guardrails: {len(alerts)} alert(s) raised")
    _rollout_experiment(session, fraud, rollout, now - timedelta(days=days), progress)
    ab_test.finish(session, progress)
    from feedback.backlog import queries as backlog_queries
    from feedback.backlog import services as backlog

    for model in (claims, fraud):
        summary = backlog.refresh(session, SEED_ACTOR, model.key)
        top = backlog_queries.ranked(session, backlog_queries.BacklogFilter(model.key))
        progress(f"backlog {model.key}: {summary.created} item(s); top: {top[0].title if top else 'none'}")
    return True


class _AbTest:
    """A finished A/B test on the claims model: half the reviewers (by hash) decided unaided for three weeks."""

    def __init__(self, experiment_id: int, salt: str, window: tuple[datetime, datetime]) -> None:
        self.experiment_id, self.salt, self.window = experiment_id, salt, window

    def arm(self, reviewer_id: int) -> str:
        from feedback.impact.experiments import hashed_arm

        return hashed_arm(self.salt, str(reviewer_id), 0.5)

    def record_exposures(self, session: Session, exposed: list[tuple[dict[str, Any], str]]) -> None:
        """One exposure per stored decision (cases the ingest rules routed away were never shown)."""
        rows = [
            {
                "experiment_id": self.experiment_id,
                "recommendation_id": dec["recommendation_id"],
                "reviewer_id": dec["reviewer_id"],
                "unit_id": str(dec["reviewer_id"]),
                "arm": arm,
                "exposed_at": dec["opened_at"],
            }
            for dec, arm in exposed
            if "recommendation_id" in dec
        ]
        if rows:
            session.execute(insert(Exposure), rows)
            session.commit()

    def finish(self, session: Session, progress: Callable[[str], None]) -> None:
        """Mark the test as run and stopped, and analyse it."""
        from feedback.impact import runs as impact_runs

        experiment = session.get(Experiment, self.experiment_id)
        assert experiment is not None
        experiment.status, experiment.started_at, experiment.stopped_at = "stopped", *self.window
        audit.record(
            session,
            SEED_ACTOR,
            [
                Change("experiment.started", "experiment", experiment.id, {"at": self.window[0].isoformat()}),
                Change("experiment.stopped", "experiment", experiment.id, {"at": self.window[1].isoformat()}),
            ],
        )
        session.commit()
        analyst = session.scalars(select(User).where(User.role == "analyst")).one()
        run = impact_runs.create_run(session, analyst, kind="ab", params={}, target_id=experiment.id)
        impact_runs.execute_run(session, run.id)
        handling = next((m for m in (run.result or {}).get("metrics", []) if m["metric"] == "handling_seconds"), None)
        if handling and handling.get("effect"):
            effect = handling["effect"]
            progress(
                f"A/B test: handling time {effect['lift']:+.1%} with the AI shown "
                f"(95% CI {effect['lift_ci_low']:+.1%} to {effect['lift_ci_high']:+.1%}; true effect "
                f"{AI_HANDLING_FACTOR - 1:+.0%})"
            )
        else:
            progress(f"A/B analysis: {run.status} {run.message}")


def _ab_experiment(session: Session, claims: Model, now: datetime, days: int) -> _AbTest:
    """Create the claims A/B test (by reviewer) over three weeks ending 19 days ago."""
    from feedback.impact import experiments

    analyst = session.scalars(select(User).where(User.role == "analyst")).one()
    experiment = experiments.create_experiment(
        session,
        analyst,
        {
            "key": "claims-ai-ab",
            "name": "Claims AI shown vs hidden, by reviewer",
            "model_id": claims.id,
            "kind": "ab",
            "unit": "reviewer",
            "ai_weight": 0.5,
            "hypothesis": "Reviewers who see the claims AI decide faster and no less accurately.",
        },
    )
    experiment.salt = "demo-claims-ab"  # a fixed salt keeps the demo reproducible
    session.commit()
    end = (now - timedelta(days=min(19, days // 4))).replace(hour=0, minute=0)
    start = end - timedelta(days=min(21, days // 4))
    return _AbTest(experiment.id, experiment.salt, (start, end))


def _staff_by_site(reviewers: list[User]) -> dict[str, list[User]]:
    """Each site's reviewers, in the order of STAFF_PER_SITE."""
    staff, start = {}, 0
    for site, count in zip(SITES, STAFF_PER_SITE, strict=True):
        staff[site] = reviewers[start : start + count]
        start += count
    return staff


def _rollout_schedule(now: datetime, days: int) -> dict[str, datetime | None]:
    """Go-live Mondays at a quarter, half and three quarters of the history; Belfast never (comparison)."""
    first = (now - timedelta(days=days)).replace(hour=0, minute=0)
    first_monday = first + timedelta(days=(7 - first.weekday()) % 7)
    weeks = max(days // 7, 4)
    return {
        site: None if share is None else first_monday + timedelta(weeks=max(round(weeks * share), 1))
        for site, share in ROLLOUT_SHARES.items()
    }


def _rollout_experiment(
    session: Session,
    fraud: Model,
    rollout: dict[str, datetime | None],
    started: datetime,
    progress: Callable[[str], None],
) -> None:
    """The fraud model's staggered rollout, a weekly panel of handling times, and its analysis."""
    from feedback.impact import experiments
    from feedback.impact import panels as impact_panels
    from feedback.impact import runs as impact_runs

    analyst = session.scalars(select(User).where(User.role == "analyst")).one()
    experiment = experiments.create_experiment(
        session,
        analyst,
        {
            "key": "fraud-rollout",
            "name": "Fraud AI rollout by site",
            "model_id": fraud.id,
            "kind": "staggered",
            "hypothesis": "Showing the fraud AI's recommendation cuts handling time without hurting accuracy.",
            "sites": [{"site": site, "go_live": when} for site, when in rollout.items()],
        },
    )
    experiments.start_experiment(session, analyst, experiment.id)
    experiment.started_at = started
    session.commit()
    try:
        panel, _ = impact_panels.build_platform_panel(
            session, analyst, experiment_id=experiment.id, metric="median_handling_seconds", unit="site_reviewer"
        )
    except ValidationFailed as exc:
        progress(f"rollout: no panel ({exc.fields})")
        return
    run = impact_runs.create_run(
        session,
        analyst,
        kind="staggered",
        params={"control": "not_yet", "method": "dr", "draws": 999},
        target_id=panel.id,
    )
    impact_runs.execute_run(session, run.id)
    result = run.result or {}
    simple = result.get("simple") or {}
    if simple.get("relative") is not None:
        progress(
            f"rollout: handling time {simple['relative']:+.1%} where the AI was switched on "
            f"(95% CI {simple['relative_ci_low']:+.1%} to {simple['relative_ci_high']:+.1%}; true effect "
            f"{AI_HANDLING_FACTOR - 1:+.0%})"
        )
    else:
        progress(f"rollout analysis: {run.status} {run.message}")


def _break_a_rule(rng: random.Random, rec: dict[str, Any]) -> bool:
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


class _World:
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
        ids = _store(session, recs, decisions)
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
        ids = _store(session, recs, [])
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
        if not raised:
            return
        policies = decision_exceptions.sla_hours(session, list({r[1]["model"].id for r in raised}))
        rows = []
        for rec_id, rec, kind, opened, raised_by in raised:
            severity = decision_exceptions.DEFAULT_SEVERITY[kind]
            rows.append(
                {
                    "recommendation_id": rec_id,
                    "model_id": rec["model"].id,
                    "site": rec["site"],
                    "kind": kind,
                    "severity": severity,
                    "reason": "Needs a senior look"
                    if kind == "reviewer_escalation"
                    else "random second review of an accepted case",
                    "raised_by_id": raised_by,
                    "opened_at": opened,
                    "sla_due_at": decision_exceptions.sla_due(policies, rec["model"].id, kind, severity, opened),
                    "status": "open",
                    "resolution_note": "",
                    "row_version": 1,
                }
            )
        ids = session.scalars(
            insert(DecisionException).returning(DecisionException.id, sort_by_parameter_order=True), rows
        ).all()
        audit.record(
            session,
            SEED_ACTOR,
            [
                Change(
                    "exception.raised",
                    "exception",
                    exc_id,
                    {"recommendation_id": row["recommendation_id"], "kind": row["kind"]},
                )
                for exc_id, row in zip(ids, rows, strict=True)
            ],
        )
        self._work(
            session,
            [
                (exc_id, row["recommendation_id"], row["kind"], row["opened_at"], raised_item[1]["truth"])
                for exc_id, row, raised_item in zip(ids, rows, raised, strict=True)
            ],
        )

    def _work(self, session: Session, items: list[tuple[int, int, str, datetime, str]]) -> None:
        """Handlers resolve most exceptions after a while; the recent ones are still open or in progress."""
        updates, resolved_cases, changes = [], [], defaultdict(list)
        for exc_id, rec_id, kind, opened, truth in items:
            handler = self.rng.choice(self.handlers)
            hours = self.rng.lognormvariate(math.log(RESOLUTION_MEDIAN_HOURS[kind]), 0.9)
            resolved_at = opened + timedelta(hours=hours)
            if resolved_at < self.now:
                updates.append(
                    {
                        "id": exc_id,
                        "status": "resolved",
                        "resolved_at": resolved_at,
                        "assignee_id": handler.id,
                        "resolved_by_id": handler.id,
                        "resolution_action": truth,
                        "row_version": 2,
                    }
                )
                changes[handler].append(
                    Change("exception.resolved", "exception", exc_id, {"final_action": truth, "kind": kind})
                )
                if kind != "audit_sample":
                    resolved_cases.append({"id": rec_id, "status": "resolved"})
            elif self.rng.random() < 0.5:
                updates.append({"id": exc_id, "status": "in_progress", "assignee_id": handler.id, "row_version": 2})
                changes[handler].append(Change("exception.claimed", "exception", exc_id, {"to": handler.email}))
        # Table-level executemany: these rows were just written, so no row-version check is needed.
        table = Base.metadata.tables["exceptions"]
        for status in ("resolved", "in_progress"):
            batch = [u for u in updates if u["status"] == status]
            if batch:
                columns: dict[str, Any] = {k: bindparam(f"v_{k}") for k in batch[0] if k != "id"}
                session.execute(
                    update(table).where(table.c.id == bindparam("v_id")).values(**columns),
                    [{f"v_{k}": v for k, v in u.items()} for u in batch],
                )
        if resolved_cases:
            cases = Base.metadata.tables["recommendations"]
            session.execute(
                update(cases).where(cases.c.id == bindparam("v_id")).values(status="resolved"),
                [{"v_id": c["id"]} for c in resolved_cases],
            )
        for handler, handler_changes in changes.items():
            audit.record(session, Actor(handler.id, handler.email), handler_changes)

    def _outcomes(self, session: Session, ids: list[int], recs: list[dict[str, Any]]) -> None:
        """Most cases older than two weeks have learned their outcome from the ledger or chargebacks."""
        rows = []
        for rec_id, rec in zip(ids, recs, strict=True):
            observed = rec["created_at"] + timedelta(days=self.rng.uniform(5, 14))
            if observed < self.now - timedelta(days=1) and self.rng.random() < 0.85:
                source = "claims_ledger" if rec["model"].key == CLAIMS.key else "chargebacks"
                content = {"case": rec_id, "outcome": rec["truth"], "observed_at": observed, "source": source}
                rows.append(
                    {
                        "recommendation_id": rec_id,
                        "source": source,
                        "label": rec["truth"],
                        "value": None,
                        "observed_at": observed,
                        "received_at": observed,
                        "payload_hash": hashlib.sha256(audit.canonical_json(content).encode()).hexdigest(),
                    }
                )
        if rows:
            ids_out = session.scalars(insert(Outcome).returning(Outcome.id, sort_by_parameter_order=True), rows).all()
            rollup.record_outcomes(session, list(ids_out))
            audit.record(
                session,
                Actor(None, "outcome-feed"),
                [
                    Change(
                        "outcome.recorded",
                        "recommendation",
                        r["recommendation_id"],
                        {"source": r["source"], "outcome_id": i},
                    )
                    for r, i in zip(rows, ids_out, strict=True)
                ],
            )


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


def _claim_case(
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


def _fraud_case(
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
        _scale_handling(decision, AI_HANDLING_FACTOR)
    else:
        _unaided(decision, recommended)
    return rec, decision


def _scale_handling(decision: dict[str, Any], factor: float) -> None:
    """Make the reviewer take `factor` times as long over the case."""
    opened = decision["opened_at"]
    decision["decided_at"] = opened + (decision["decided_at"] - opened) * factor


def _unaided(decision: dict[str, Any], recommended: str) -> None:
    """The AI was hidden: the same human judgement, recorded as an unaided decision."""
    decision["ai_shown"] = False
    if decision["action"] != "escalate":
        decision["action"] = "accept" if decision["final_action"] == recommended else "override"
        decision["reason_code"] = None


def _store(session: Session, recs: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> list[int]:
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
    ids = ingest.store_recommendations(session, SEED_ACTOR, rows)
    if decisions:
        for rec_id, dec, rec in zip(ids, decisions, recs, strict=True):
            dec.update(recommendation_id=rec_id, model_id=rec["model"].id, model_version_id=rec["version"].id)
        session.execute(insert(Decision), decisions)
        rollup.apply(
            session,
            rollup.tally(
                (
                    dec,
                    {
                        "model_id": rec["model"].id,
                        "model_version_id": rec["version"].id,
                        "model_version": rec["version"].version,
                        "site": rec["site"],
                        "confidence": rec["confidence"],
                        "segment": rec["segment"],
                        "recommended_action": rec["recommended_action"],
                    },
                )
                for dec, rec in zip(decisions, recs, strict=True)
            ),
        )
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
        emails = {i: e for i, e in session.execute(select(User.id, User.email).where(User.id.in_(list(by_reviewer))))}
        for reviewer_id, changes in by_reviewer.items():
            audit.record(session, Actor(reviewer_id, emails[reviewer_id]), changes)
    return ids
