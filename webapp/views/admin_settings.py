"""A model's exception settings: its SLA table and each version's exception rules (on the admin blueprint)."""

from __future__ import annotations

from typing import Any

from flask import abort, g, request

from feedback import permissions
from feedback.accounts import services as accounts
from feedback.catalog import services as catalog
from feedback.decision_exceptions import services as decision_exceptions
from feedback.errors import ValidationFailed
from feedback.models import (
    DEFAULT_SLA_HOURS,
    EXCEPTION_KINDS,
    SEVERITIES,
    ModelVersion,
)
from feedback.params import Number, Text, parse_params
from feedback.permissions import Action
from feedback.schemas import VersionRulesIn
from feedback.validation import parse
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import render_page_or_block
from webapp.views.admin import bp, split_list

SLA_FORM = tuple(Number(f"{kind}.{severity}", 0, 8760) for kind in EXCEPTION_KINDS for severity in SEVERITIES)
RULES_FORM = (
    Number("min_confidence", 0, 1),
    Text("policy_flags", 5000),
    Text("required_features", 30_000),
    Number("audit_sample_pct", 0, 100),
)


def render_settings(key: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    """A model's SLA table and its versions' exception rules."""
    model = catalog.get_model(db.session, key)
    policies = decision_exceptions.sla_hours(db.session, [model.id])
    context: dict[str, Any] = {
        "model": model,
        "kinds": EXCEPTION_KINDS,
        "severities": SEVERITIES,
        "defaults": DEFAULT_SLA_HOURS,
        "hours": {(k, s): h for (_, k, s), h in policies.items()},
        "can_edit": permissions.can_change_model(db.session, g.user, model.id),
        "notice": None,
        "problem": None,
        "fields": {},
        "rule_problem": {},
    }
    context.update(extra)
    return render_page_or_block("admin/settings.html", "settings_body", status=status, **context)


@bp.get("/models/<key>/settings")
@login_required(Action.READ_MODELS)
def settings(key: str) -> tuple[str, int]:
    """SLA table and exception rules of a model."""
    return render_settings(key)


@bp.post("/models/<key>/sla")
@login_required(Action.CHANGE_MODEL)
def save_sla(key: str) -> tuple[str, int]:
    """Replace the model's SLA table from the grid (empty cells use the default)."""
    model = catalog.get_model(db.session, key)
    try:
        grid = parse_params(request.form, SLA_FORM)
        hours = {(kind, severity): grid[f"{kind}.{severity}"] for kind in EXCEPTION_KINDS for severity in SEVERITIES}
        decision_exceptions.set_sla_policies(db.session, accounts.actor_of(g.user), model=model, hours=hours)
    except ValidationFailed as exc:
        return render_settings(key, 422, problem=exc.message, fields=exc.fields)
    return render_settings(key, notice="SLA table saved.")


@bp.post("/versions/<int:version_id>/rules")
@login_required(Action.CHANGE_MODEL)
def save_rules(version_id: int) -> tuple[str, int]:
    """Replace one version's exception rules."""
    form = request.form
    version = db.session.get(ModelVersion, version_id)
    if version is None:
        abort(404)
    key = version.model.key
    try:
        values = parse_params(form, RULES_FORM)
        sample_pct = values["audit_sample_pct"]
        data = {
            "min_confidence": values["min_confidence"],
            "policy_flags": split_list(values["policy_flags"] or ""),
            "required_features": split_list(values["required_features"] or ""),
            "audit_sample_rate": sample_pct / 100 if sample_pct is not None else 0.0,
        }
        decision_exceptions.set_version_rules(
            db.session, accounts.actor_of(g.user), version_id=version_id, rules=parse(VersionRulesIn, data)
        )
    except ValidationFailed as exc:
        message = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
        return render_settings(key, 422, rule_problem={version_id: message})
    return render_settings(key, notice=f"Rules for {version.version} saved.")
