"""Model registry: models, their actions and reason codes, versions and stages."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for
from werkzeug.wrappers import Response

from feedback import permissions
from feedback.accounts import services as accounts
from feedback.catalog import queries as catalog_queries
from feedback.catalog import services as catalog
from feedback.errors import FIELD_FAULTS, Conflict, FeedbackError, NotFound, PermissionDenied
from feedback.models import (
    AI_VISIBLE_STAGES,
    STAGES,
    Guardrail,
    ModelVersion,
)
from feedback.overrides import guardrails
from feedback.params import Choice, Flag, Text, parse_params
from feedback.permissions import Action
from feedback.review import queries as review_queries
from feedback.schemas import ModelIn, ModelVersionIn
from feedback.validation import parse
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import is_htmx, render_page_or_block
from webapp.views import readiness as readiness_views

bp = Blueprint("admin", __name__, url_prefix="/admin")

MODEL_FORM = (
    Text("key", 64),
    Text("name"),
    Text("description", 2000),
    Text("actions", 5000),
    Text("reason_codes", 30_000),
    Text("segment_labels", 30_000),
)
VERSION_FORM = (Text("version", 64), Choice("stage", STAGES, default="shadow"))


def split_list(text: str) -> list[str]:
    """Actions typed one per line or separated by commas."""
    return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]


def split_labelled(text: str) -> tuple[list[str], dict[str, str]]:
    """Actions typed one per line as `code | label`, or comma-separated codes; the labels given."""
    codes, labels = [], {}
    for line in text.splitlines():
        if "|" in line:
            code, label = (part.strip() for part in line.split("|", 1))
            if code:
                codes.append(code)
                if label:
                    labels[code] = label
        else:
            codes += split_list(line)
    return codes, labels


def parse_segment_labels(text: str) -> dict[str, dict[str, Any]]:
    """Segment labels typed one per line: `attribute | Label` or `attribute.value | Label of the value`."""
    labels: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, label = (part.strip() for part in line.partition("|"))
        attribute, _, value = name.partition(".")
        entry = labels.setdefault(attribute, {"label": "", "values": {}})
        if value:
            entry["values"][value] = label
        else:
            entry["label"] = label
    for attribute, entry in labels.items():
        entry["label"] = entry["label"] or attribute.replace("_", " ").capitalize()
    return labels


def parse_reason_codes(text: str) -> list[dict[str, str]]:
    """Reason codes typed one per line as `code | label` (label defaults to the code)."""
    reasons = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = re.split(r"\s*[|:]\s*", line.strip(), maxsplit=1)
        code, label = parts[0], parts[1] if len(parts) > 1 else ""
        reasons.append({"code": code, "label": label or code.replace("_", " ").capitalize()})
    return reasons


def _ownership_context() -> dict[str, Any]:
    """The models, who owns each, which ones this user may change, and (for admins) who could own them."""
    models = catalog_queries.models_with_versions(db.session)
    if g.user.role == "admin":
        editable = {m.id for m in models}
    else:
        editable = permissions.owned_model_ids(db.session, g.user) if g.user.role == "model_owner" else set()
    candidates = catalog_queries.active_users(db.session, "model_owner") if g.user.role == "admin" else []
    active = guardrails.enabled(db.session)
    by_version: dict[int, list[tuple[Guardrail, str]]] = {}
    for guardrail in active:
        by_version.setdefault(guardrail.model_version_id, []).append((guardrail, guardrails.describe(guardrail)))
    return {
        "models": models,
        "owners": catalog_queries.model_owners(db.session),
        "editable": editable,
        "owner_candidates": candidates,
        "guardrails": by_version,
    }


def render_models(status: int = 200, **extra: Any) -> tuple[str, int]:
    """The registry page, or its list block for htmx."""
    context: dict[str, Any] = {
        **_ownership_context(),
        "stages": STAGES,
        "can_edit": permissions.allows(g.user.role, Action.CHANGE_MODEL),
        "problem": None,
        "fields": {},
        "form": {},
        "version_problem": {},
        "notice": None,
        "confirm_stage": None,
        "stage_problem": None,
    }
    context.update(extra)
    return render_page_or_block("admin/models.html", "model_list", status=status, **context)


@bp.get("/models")
@login_required(Action.READ_MODELS)
def models() -> tuple[str, int]:
    """List models with their versions."""
    return render_models()


@bp.post("/models")
@login_required(Action.CHANGE_MODEL)
def register_model() -> Response | tuple[str, int]:
    """Register a model from the form."""
    form = request.form
    try:
        values = {k: v or "" for k, v in parse_params(form, MODEL_FORM).items()}
        actions, action_labels = split_labelled(values["actions"])
        data = {
            "key": values["key"],
            "name": values["name"],
            "description": values["description"],
            "actions": actions,
            "action_labels": action_labels,
            "reason_codes": parse_reason_codes(values["reason_codes"]),
            "segment_labels": parse_segment_labels(values["segment_labels"]),
        }
        catalog.register_model(db.session, accounts.actor_of(g.user), spec=parse(ModelIn, data))
    except FeedbackError as exc:
        return render_page_or_block(
            "admin/models.html",
            "model_form",
            status=exc.status,
            **_form_context(problem=exc.message, fields=exc.fields, form=form.to_dict()),
        )
    if is_htmx():
        return Response(status=200, headers={"HX-Redirect": url_for("admin.models")})
    return redirect(url_for("admin.models"))


def _form_context(**extra: Any) -> dict[str, Any]:
    """Context for re-rendering the registration form with errors."""
    return {
        **_ownership_context(),
        "stages": STAGES,
        "can_edit": True,
        "version_problem": {},
        "notice": None,
        "confirm_stage": None,
        "stage_problem": None,
        **extra,
    }


@bp.post("/models/<key>/versions")
@login_required(Action.CHANGE_MODEL)
def add_version(key: str) -> Response | tuple[str, int]:
    """Register a version of a model."""
    try:
        form = parse_params(request.form, VERSION_FORM)
        spec = parse(ModelVersionIn, {"version": form["version"] or "", "stage": form["stage"]})
        catalog.add_model_version(db.session, accounts.actor_of(g.user), model_key=key, spec=spec)
    except NotFound:
        abort(404)
    except PermissionDenied:
        raise  # 403, never a form error
    except FeedbackError as exc:
        message = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
        return render_models(422, version_problem={key: message})
    return redirect(url_for("admin.models"))


@bp.post("/models/<key>/owners")
@login_required(Action.ADMINISTER)
def set_owners(key: str) -> Response | tuple[str, int]:
    """Replace a model's owners (admins only)."""
    emails = parse_params(request.form, (Text("owner", 254, many=True),))["owner"]
    try:
        owners = catalog.set_model_owners(db.session, g.user, model_key=key, owner_emails=[e for e in emails if e])
    except FIELD_FAULTS as exc:
        return render_models(exc.status, version_problem={key: exc.fields.get("owners", exc.message)})
    except NotFound:
        abort(404)
    names = ", ".join(o.name for o in owners) or "nobody"
    if not is_htmx():
        return redirect(url_for("admin.models"))
    return render_models(notice=f"{key} is now owned by {names}.")


STAGE_VERBS = {
    "shadow": "move it to shadow",
    "pilot": "move it to pilot",
    "production": "move it to production",
    "paused": "pause it",
    "retired": "retire it",
}


def stage_consequence(version: ModelVersion, stage: str) -> str:
    """What moving a version to `stage` does, in words, for the confirmation."""
    name = f"{version.model.name} {version.version}"
    waiting = review_queries.open_case_count(db.session, version.id)
    cases = f"{waiting} open case{'' if waiting == 1 else 's'}"
    shown_now, shown_after = version.stage in AI_VISIBLE_STAGES, stage in AI_VISIBLE_STAGES
    if shown_now and not shown_after:
        until = {
            "paused": " until someone resumes it",
            "shadow": "; the model's recommendations are still recorded, not shown",
            "retired": "; the version is taken out of service",
        }[stage]
        return f"Reviewers will stop seeing {name}'s recommendations and decide its cases ({cases} now) unaided{until}."
    if shown_after and not shown_now:
        return f"Reviewers will start seeing {name}'s recommendations on its cases ({cases} now)."
    if shown_now:
        return f"Reviewers keep seeing {name}'s recommendations; it is labelled {stage} instead of {version.stage}."
    return f"Reviewers keep deciding {name}'s cases unaided; it is labelled {stage} instead of {version.stage}."


# The stage asked for, whether its consequence was confirmed, and the stage the confirmation was shown for.
STAGE_FORM = (
    Choice("stage", STAGES, required=True),
    Flag("confirm"),
    Choice("from", STAGES),
    Text("override_reason", 2000),  # an admin's reason to promote without a go verdict
)


@bp.post("/versions/<int:version_id>/stage")
@login_required(Action.CHANGE_MODEL)
def set_stage(version_id: int) -> tuple[str, int]:
    """Move a version to another stage, in two steps: what will happen, then the change once confirmed.

    The confirmation carries the stage it was shown for (`from`): if the stage changed meanwhile,
    nothing is changed and the page says so.
    """
    version = db.session.get(ModelVersion, version_id)
    if version is None:
        abort(404)
    permissions.require(g.user, Action.CHANGE_MODEL, session=db.session, model_id=version.model_id)
    form = parse_params(request.form, STAGE_FORM)
    stage = form["stage"]
    name = f"{version.model.name} {version.version}"
    if stage == version.stage:
        return render_models(notice=f"{name} is already {stage}; nothing changed.")
    if not form["confirm"]:
        confirm = {
            "version": version,
            "stage": stage,
            "sentence": stage_consequence(version, stage),
            "button": f"Yes, {STAGE_VERBS[stage]}",
            "readiness": readiness_views.promotion(version, stage),  # a promotion shows its scorecard first
        }
        return render_models(confirm_stage=confirm)
    if form["from"] != version.stage:
        message = f"{name} is {version.stage} now, not {form['from'] or 'what you saw'}; nothing changed."
        return render_models(409, stage_problem=message)
    try:
        catalog.set_version_stage(
            db.session,
            accounts.actor_of(g.user),
            version_id=version_id,
            stage=stage,
            override_reason=form["override_reason"],
        )
    except Conflict as exc:  # no readiness plan for a pilot, or no go verdict for a promotion
        db.session.rollback()
        return render_models(409, stage_problem=f"{exc.message}; nothing changed.")
    return render_models(notice=f"{name} is now {version.stage}.")


def _local(target: str | None) -> str:
    """A path on this site to go back to (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("admin.models")


@bp.route("/guardrails/<int:guardrail_id>/remove", methods=["GET", "POST"])
@login_required(Action.CHANGE_MODEL)
def remove_guardrail(guardrail_id: int) -> Response | tuple[str, int]:
    """Remove a guardrail: the page says what will happen, and only the confirmed POST removes it."""
    try:
        guardrail = guardrails.get_guardrail(db.session, accounts.actor_of(g.user), guardrail_id=guardrail_id)
    except NotFound:
        abort(404)
    asked = parse_params(request.values, (Text("next", 2000), Flag("confirm")))
    back = _local(asked["next"])
    context = {
        "guardrail": guardrail,
        "rule": guardrails.describe(guardrail),
        "consequence": guardrails.removal_consequence(guardrail),
        "back": back,
        "problem": None,
    }
    if request.method == "GET":
        return render_page_or_block("admin/remove_guardrail.html", "confirm_body", **context)
    if not asked["confirm"]:
        context["problem"] = "Nothing was removed: confirm with the button below."
        return render_page_or_block("admin/remove_guardrail.html", "confirm_body", status=422, **context)
    guardrails.remove_guardrail(db.session, accounts.actor_of(g.user), guardrail_id=guardrail_id)
    return redirect(back)
