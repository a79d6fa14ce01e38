"""The model catalog: registering models, their owners, their versions and each version's stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.accounts.services import actor_of
from feedback.audit import Actor, Change
from feedback.errors import (
    Conflict,
    NotAllowedByConfiguration,
    NotFound,
    Problems,
    ValidationFailed,
)
from feedback.models import (
    STAGES,
    Model,
    ModelOwner,
    ModelVersion,
    User,
)
from feedback.permissions import Action
from feedback.readiness import services as readiness
from feedback.schemas import ModelIn, ModelVersionIn
from feedback.webhooks import services as webhooks


def register_model(session: Session, actor: Actor, *, spec: ModelIn) -> Model:
    """Register a model with its actions and reason codes."""
    permissions.require(actor, Action.REGISTER_MODELS, session=session)
    problems = Problems()
    if len(set(spec.actions)) != len(spec.actions):
        problems.invalid["actions"] = "must not repeat an action"  # the schema's uniqueItems says so
    codes = [r.code for r in spec.reason_codes]
    if len(set(codes)) != len(codes):
        problems.repeated["reason_codes"] = "must not repeat a code"  # a property of objects: no schema says so
    for code in spec.action_labels:
        if code not in spec.actions:
            problems.disallowed[f"action_labels.{code}"] = "labels an action the model does not have"
    problems.raise_any("the model is invalid")
    if session.scalar(select(Model.id).where(Model.key == spec.key)) is not None:
        raise Conflict(f"a model with key {spec.key!r} already exists", {"key": "already registered"})
    model = Model(
        key=spec.key,
        name=spec.name,
        description=spec.description,
        actions=list(spec.actions),
        reason_codes=[r.model_dump() for r in spec.reason_codes],
        action_labels=dict(spec.action_labels),
        segment_labels={k: v.model_dump() for k, v in spec.segment_labels.items()},
    )
    session.add(model)
    session.flush()
    changes = [Change("model.registered", "model", model.id, spec.model_dump())]
    registrant = session.get(User, actor.id) if actor.id is not None else None
    if registrant is not None and registrant.role == "model_owner":
        # Whoever registers a model owns it until an admin says otherwise.
        session.add(ModelOwner(model_id=model.id, user_id=registrant.id))
        changes.append(Change("model.owners_changed", "model", model.id, {"added": [registrant.email], "removed": []}))
    audit.record(session, actor, changes)
    session.commit()
    return model


def set_model_owners(session: Session, actor: User, *, model_key: str, owner_emails: Sequence[str]) -> list[User]:
    """Replace a model's owners (admins only); each must be an active model owner."""
    permissions.require(actor, Action.ADMINISTER)
    model = get_model(session, model_key)
    wanted = sorted({e.strip().lower() for e in owner_emails if e.strip()})
    found = {u.email: u for u in session.scalars(select(User).where(User.email.in_(wanted)))}
    # Someone who is no user is not an active model owner either: 409, as a 404 here would say the model is gone.
    bad = [e for e in wanted if e not in found or not found[e].active or found[e].role != "model_owner"]
    if bad:
        raise NotAllowedByConfiguration(
            "only active model owners can own a model", {"owners": f"not an active model owner: {', '.join(bad)}"}
        )
    current = {o.user.email: o for o in session.scalars(select(ModelOwner).where(ModelOwner.model_id == model.id))}
    added = [e for e in wanted if e not in current]
    removed = sorted(e for e in current if e not in found)
    for email in removed:
        session.delete(current[email])
    session.add_all(ModelOwner(model_id=model.id, user_id=found[e].id) for e in added)
    if added or removed:
        audit.record(
            session,
            actor_of(actor),
            [Change("model.owners_changed", "model", model.id, {"added": added, "removed": removed})],
        )
    session.commit()
    return [found[e] for e in wanted]


def get_model(session: Session, key: str) -> Model:
    """The model with this key, or NotFound."""
    model = session.scalar(select(Model).where(Model.key == key))
    if model is None:
        raise NotFound(f"no model {key!r}", {"model": "unknown model"})
    return model


def add_model_version(session: Session, actor: Actor, *, model_key: str, spec: ModelVersionIn) -> ModelVersion:
    """Register a new version of a model."""
    model = get_model(session, model_key)
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=model.id)
    exists = select(ModelVersion.id).where(ModelVersion.model_id == model.id, ModelVersion.version == spec.version)
    if session.scalar(exists) is not None:
        raise Conflict(f"{model.key} already has version {spec.version}", {"version": "already registered"})
    if spec.stage in ("pilot", "production", "paused") and actor.id is not None:
        # The readiness gates hold from the first day: a pilot starts only with a plan, production only on go.
        # (The operator's own tools, acting without a user, may load versions at any stage.)
        raise Conflict(
            f"register {spec.version} in shadow, register its readiness plan, then start its pilot",
            {"stage": "a new version starts in shadow"},
        )
    version = ModelVersion(model_id=model.id, version=spec.version, stage=spec.stage, notes=spec.notes)
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor,
        [Change("model_version.registered", "model_version", version.id, {"model": model.key, **spec.model_dump()})],
    )
    webhooks.enqueue(
        session,
        "model_version.created",
        {"model": model.key, "version": version.version, "stage": version.stage, "id": version.id},
    )
    session.commit()
    webhooks.deliver_soon()
    return version


def set_version_stage(
    session: Session, actor: Actor, *, version_id: int, stage: str, override_reason: str | None = None
) -> ModelVersion:
    """Move a version to another stage (paused and shadow versions are hidden from reviewers).

    A pilot starts only with a readiness plan; a promotion to production needs a go verdict or an
    admin's override with a reason (feedback.readiness.services), recorded with the verdict it used.
    """
    if stage not in STAGES:
        raise ValidationFailed("unknown stage", {"stage": f"must be one of {', '.join(STAGES)}"})
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"no model version {version_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=version.model_id)
    before = version.stage
    details: dict[str, Any] = {"from": before, "to": stage}
    if stage == "pilot" and before not in ("pilot", "paused"):
        readiness.pilot_check(session, version)
    if readiness.needs_go(session, version, stage):
        details |= readiness.promotion_check(session, actor, version=version, override_reason=override_reason)
    version.stage = stage
    audit.record(session, actor, [Change("model_version.stage_changed", "model_version", version.id, details)])
    session.commit()
    return version
