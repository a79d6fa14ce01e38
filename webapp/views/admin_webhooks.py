"""Webhooks: subscriptions, test deliveries and the delivery log (on the admin blueprint)."""

from __future__ import annotations

from typing import Any

from flask import abort, g, request

from feedback.errors import NotFound, ValidationFailed
from feedback.params import Text, parse_params
from feedback.permissions import Action
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import render_page_or_block
from webapp.views.admin import bp

WEBHOOK_FORM = (Text("url", 2000), Text("events", 64, many=True))  # the service names unknown events


def render_webhooks(status: int = 200, **extra: Any) -> tuple[str, int]:
    """The webhooks page (or its body, for htmx)."""
    from feedback.models import WEBHOOK_EVENTS
    from feedback.webhooks import services as webhooks

    context: dict[str, Any] = {
        "hooks": webhooks.webhooks(db.session),
        "deliveries": webhooks.deliveries(db.session),
        "events": WEBHOOK_EVENTS,
        "problem": None,
        "fields": {},
        "notice": None,
        "new_secret": None,
        "tested": None,
        **extra,
    }
    return render_page_or_block("admin/webhooks.html", "webhooks_body", status=status, **context)


@bp.get("/webhooks")
@login_required(Action.ADMINISTER)
def webhooks_page() -> tuple[str, int]:
    """Webhooks and their delivery log."""
    return render_webhooks()


@bp.post("/webhooks")
@login_required(Action.ADMINISTER)
def create_webhook() -> tuple[str, int]:
    """Register an endpoint; its signing secret is shown once, here."""
    from feedback.webhooks import services as webhooks

    try:
        form = parse_params(request.form, WEBHOOK_FORM)
        events = [e for e in form["events"] if e]
        hook = webhooks.create_webhook(db.session, g.user, url=form["url"] or "", events=events)
    except ValidationFailed as exc:
        return render_webhooks(422, problem=exc.message, fields=exc.fields)
    return render_webhooks(notice=f"Webhook {hook.id} added.", new_secret=hook.secret)


@bp.post("/webhooks/<int:webhook_id>/test")
@login_required(Action.ADMINISTER)
def test_webhook(webhook_id: int) -> tuple[str, int]:
    """Send a clearly marked test event to the endpoint now and show its answer."""
    from feedback.webhooks import services as webhooks

    try:
        sent = webhooks.send_test(db.session, g.user, webhook_id=webhook_id)
    except NotFound:
        abort(404)
    where = f"Test delivery {sent.id} to {sent.webhook.url}"
    if sent.status == "delivered":
        return render_webhooks(notice=f"{where}: answered {sent.last_status_code}.", tested=sent.id)
    answer = f"answered {sent.last_status_code}" if sent.last_status_code else f"no answer ({sent.last_error})"
    return render_webhooks(problem=f"{where} failed: {answer}.", tested=sent.id)


@bp.post("/webhooks/<int:webhook_id>/<any(enable, disable):change>")
@login_required(Action.ADMINISTER)
def toggle_webhook(webhook_id: int, change: str) -> tuple[str, int]:
    """Turn a webhook on or off."""
    from feedback.webhooks import services as webhooks

    try:
        webhooks.set_active(db.session, g.user, webhook_id=webhook_id, active=change == "enable")
    except NotFound:
        abort(404)
    return render_webhooks(notice=f"Webhook {webhook_id} {change}d.")
