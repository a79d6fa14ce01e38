"""Typed SQLAlchemy models, one module per capability; every class is importable from here."""

from feedback.models.accounts import ROLES, ApiToken, LoginThrottle, User
from feedback.models.audit import AuditEvent, AuditHead
from feedback.models.backlog import BACKLOG_STATUSES, BacklogItem, BacklogRefresh
from feedback.models.catalog import AI_VISIBLE_STAGES, STAGES, Model, ModelOwner, ModelVersion
from feedback.models.challengers import ChallengerRecommendation
from feedback.models.decision_exceptions import (
    DEFAULT_SLA_HOURS,
    EXCEPTION_KINDS,
    EXCEPTION_STATUSES,
    SEVERITIES,
    DecisionException,
    SlaPolicy,
)
from feedback.models.exports import EXPORT_FORMATS, ExportChunk, ExportJob
from feedback.models.impact import (
    ARMS,
    EXPERIMENT_KINDS,
    EXPERIMENT_STATUSES,
    EXPERIMENT_UNITS,
    PANEL_SOURCES,
    RUN_STATUSES,
    AnalysisRun,
    Experiment,
    Exposure,
    ImpactPanel,
    PanelRow,
    RolloutSite,
)
from feedback.models.outcomes import Outcome
from feedback.models.overrides import GUARDRAIL_KINDS, Alert, DecisionCount, Guardrail
from feedback.models.review import DECISION_ACTIONS, RECOMMENDATION_STATUSES, Decision, Recommendation
from feedback.models.webhooks import DELIVERY_STATUSES, WEBHOOK_EVENTS, Webhook, WebhookDelivery

__all__ = [
    "AI_VISIBLE_STAGES",
    "ARMS",
    "Alert",
    "AnalysisRun",
    "ApiToken",
    "AuditEvent",
    "AuditHead",
    "BACKLOG_STATUSES",
    "BacklogItem",
    "BacklogRefresh",
    "ChallengerRecommendation",
    "DECISION_ACTIONS",
    "DEFAULT_SLA_HOURS",
    "DELIVERY_STATUSES",
    "Decision",
    "DecisionCount",
    "DecisionException",
    "EXCEPTION_KINDS",
    "EXCEPTION_STATUSES",
    "EXPERIMENT_KINDS",
    "EXPERIMENT_STATUSES",
    "EXPERIMENT_UNITS",
    "EXPORT_FORMATS",
    "Experiment",
    "ExportChunk",
    "ExportJob",
    "Exposure",
    "GUARDRAIL_KINDS",
    "Guardrail",
    "ImpactPanel",
    "LoginThrottle",
    "Model",
    "ModelOwner",
    "ModelVersion",
    "Outcome",
    "PANEL_SOURCES",
    "PanelRow",
    "RECOMMENDATION_STATUSES",
    "ROLES",
    "RUN_STATUSES",
    "Recommendation",
    "RolloutSite",
    "SEVERITIES",
    "STAGES",
    "SlaPolicy",
    "User",
    "WEBHOOK_EVENTS",
    "Webhook",
    "WebhookDelivery",
]
