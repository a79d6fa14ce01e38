"""ORM objects to the API's response schemas."""

from __future__ import annotations

from typing import Any

from feedback import permissions
from feedback.models import Decision, DecisionException, Model, Recommendation, User
from feedback.schemas import DecisionOut, ExceptionOut, ModelOut, ModelVersionOut, ReasonCodeOut, RecommendationOut


def model_out(model: Model) -> dict[str, Any]:
    """A model with its versions."""
    return ModelOut(
        id=model.id,
        key=model.key,
        name=model.name,
        description=model.description,
        actions=model.actions,
        action_labels={a: model.action_label(a) for a in model.actions},
        segment_labels=model.segment_labels or {},
        reason_codes=[ReasonCodeOut(**r) for r in model.reason_codes],
        versions=[
            ModelVersionOut(id=v.id, version=v.version, stage=v.stage, notes=v.notes, created_at=v.created_at)
            for v in model.versions
        ],
    ).model_dump(mode="json")


def decision_out(decision: Decision, viewer: User) -> DecisionOut:
    """A decision; the reviewer's e-mail for admins (and the reviewer), else their pseudonym."""
    return DecisionOut(
        id=decision.id,
        recommendation_id=decision.recommendation_id,
        reviewer=permissions.person_email(viewer, decision.reviewer) or "",
        action=decision.action,
        final_action=decision.final_action,
        reason_code=decision.reason_code,
        note=decision.note,
        ai_shown=decision.ai_shown,
        channel=decision.channel,
        opened_at=decision.opened_at,
        decided_at=decision.decided_at,
        quick=decision.quick,
    )


def recommendation_out(rec: Recommendation, viewer: User) -> dict[str, Any]:
    """A recommendation with its decision if any, people shown as the viewer may see them."""
    return RecommendationOut(
        id=rec.id,
        model=rec.model.key,
        model_version=rec.model_version.version,
        external_id=rec.external_id,
        subject=rec.subject,
        site=rec.site,
        segment=rec.segment,
        recommended_action=rec.recommended_action,
        confidence=rec.confidence,
        explanation=rec.explanation,
        features=rec.features,
        status=rec.status,
        created_at=rec.created_at,
        due_at=rec.due_at,
        claimed_by=permissions.person_email(viewer, rec.claimed_by),
        claim_expires_at=rec.claim_expires_at,
        decision=decision_out(rec.decision, viewer) if rec.decision else None,
    ).model_dump(mode="json")


def exception_out(exc: DecisionException, viewer: User) -> dict[str, object]:
    """An exception as the API shows it (handlers see each other's e-mails to hand work over)."""
    return ExceptionOut(
        id=exc.id,
        recommendation_id=exc.recommendation_id,
        external_id=exc.recommendation.external_id,
        model=exc.model.key,
        site=exc.site,
        kind=exc.kind,
        severity=exc.severity,
        reason=exc.reason,
        status=exc.status,
        opened_at=exc.opened_at,
        sla_due_at=exc.sla_due_at,
        assignee=permissions.person_email(viewer, exc.assignee),
        resolved_at=exc.resolved_at,
        resolution_action=exc.resolution_action,
        resolution_note=exc.resolution_note,
    ).model_dump(mode="json")
