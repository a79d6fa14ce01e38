"""Outgoing webhooks: backlog events and new model versions, signed, retried with backoff, logged.

Events are queued as delivery rows in the same transaction as the change they report, so an
event is never sent for a change that rolled back, and none is lost if the process dies: any
later delivery pass (or `countersign webhooks deliver`) picks up what is due.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback import audit, background, permissions
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import NotFound, ValidationFailed
from feedback.models import WEBHOOK_EVENTS, User, Webhook, WebhookDelivery
from feedback.permissions import Action

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Countersign-Signature"
MAX_ATTEMPTS = 6
BACKOFF_SECONDS = 2.0  # attempt k waits BACKOFF_SECONDS * 2**(k-1); the app sets it from its config
TIMEOUT_SECONDS = 5.0
_runner: Callable[[], None] | None = None
_queued = False  # this process queued deliveries since it last started a pass


def sign(secret: str, body: bytes) -> str:
    """The signature header value: HMAC-SHA256 of the exact body with the webhook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def set_runner(runner: Callable[[], None] | None) -> None:
    """How to start a background delivery pass (the web app registers its thread pool)."""
    global _runner
    _runner = runner


def deliver_soon() -> None:
    """Start delivering queued events in the background, if this process can and anything was queued."""
    global _queued
    if _runner is not None and _queued:
        _queued = False
        _runner()


def enqueue(session: Session, event: str, data: dict[str, Any]) -> int:
    """Queue an event for every active webhook that wants it (in the caller's transaction)."""
    global _queued
    now = utcnow()
    body = json.dumps({"event": event, "sent_at": now.isoformat(), "data": data}, sort_keys=True, default=str)
    hooks = [h for h in session.scalars(select(Webhook).where(Webhook.active.is_(True))) if event in h.events]
    for hook in hooks:
        session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=body, next_attempt_at=now))
    _queued = _queued or bool(hooks)
    return len(hooks)


def create_webhook(session: Session, actor: User, *, url: str, events: list[str]) -> Webhook:
    """Register an endpoint (admins only); its signing secret is generated here."""
    permissions.require(actor, Action.ADMINISTER)
    fields = {}
    parsed = urlparse((url or "").strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 2000:
        fields["url"] = "must be an http(s) URL"
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if not events or unknown:
        fields["events"] = "choose from " + ", ".join(WEBHOOK_EVENTS)
    if fields:
        raise ValidationFailed("the webhook is invalid", fields)
    hook = Webhook(url=url.strip(), secret=secrets.token_hex(32), events=sorted(set(events)), created_by_id=actor.id)
    session.add(hook)
    session.flush()
    # The secret is not audited: the audit trail is widely readable.
    audit.record(
        session,
        Actor(actor.id, actor.email),
        [Change("webhook.created", "webhook", hook.id, {"url": hook.url, "events": hook.events})],
    )
    session.commit()
    return hook


def set_active(session: Session, actor: User, *, webhook_id: int, active: bool) -> Webhook:
    """Turn a webhook on or off (admins only); audited."""
    permissions.require(actor, Action.ADMINISTER)
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    hook.active = active
    audit.record(
        session,
        Actor(actor.id, actor.email),
        [Change("webhook.enabled" if active else "webhook.disabled", "webhook", hook.id)],
    )
    session.commit()
    return hook


def deliver_due(session: Session, now: datetime | None = None) -> int:
    """Send every delivery that is due once; returns how many were attempted.

    Rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers never send
    the same delivery twice at once.
    """
    now = now or utcnow()
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(50)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = list(session.scalars(query))
    for delivery in due:
        _attempt(delivery)
    session.commit()
    return len(due)


def _post(url: str, secret: str, event: str, delivery_id: int, body: bytes) -> tuple[int | None, str]:
    """POST one signed body; the answer's status code (None if there was none) and the error, if any."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Countersign-Webhooks/1",
            "X-Countersign-Event": event,
            "X-Countersign-Delivery": str(delivery_id),
            SIGNATURE_HEADER: sign(secret, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # admin-configured URL
            return response.status, ""
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return None, str(getattr(exc, "reason", exc))[:500]


def _attempt(delivery: WebhookDelivery) -> None:
    hook = delivery.webhook
    code, error = _post(hook.url, hook.secret, delivery.event, delivery.id, delivery.payload.encode())
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = code, error
    if not error:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", utcnow(), None
        return
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = "failed", None
        log.warning("webhook delivery %s failed after %s attempts", delivery.id, delivery.attempts)
    else:
        delivery.next_attempt_at = utcnow() + timedelta(seconds=background.backoff(delivery.attempts, BACKOFF_SECONDS))


TEST_EVENT = "webhook.test"


def send_test(session: Session, actor: User, *, webhook_id: int) -> WebhookDelivery:
    """Send one clearly marked test event to a webhook now, signed as usual, and log the attempt.

    The delivery row is committed before the endpoint is called and the answer written after, so
    no transaction (and on SQLite no write lock) is held while a slow endpoint answers. A test is
    tried once, never retried: the admin sees the answer at once.
    """
    permissions.require(actor, Action.ADMINISTER)
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    url, secret = hook.url, hook.secret
    data = {
        "test": True,
        "webhook_id": hook.id,
        "message": "A test delivery from Countersign, sent by an admin. Nothing happened; no action is needed.",
    }
    body = json.dumps({"event": TEST_EVENT, "sent_at": utcnow().isoformat(), "data": data}, sort_keys=True)
    delivery = WebhookDelivery(webhook_id=hook.id, event=TEST_EVENT, payload=body, next_attempt_at=None)
    session.add(delivery)
    session.flush()
    audit.record(session, Actor(actor.id, actor.email), [Change("webhook.tested", "webhook", hook.id)])
    session.commit()
    delivery_id = delivery.id
    code, error = _post(url, secret, TEST_EVENT, delivery_id, body.encode())
    sent = session.get(WebhookDelivery, delivery_id)
    assert sent is not None
    sent.attempts = 1
    sent.last_status_code, sent.last_error = code, error
    sent.status = "failed" if error else "delivered"
    sent.delivered_at = None if error else utcnow()
    session.commit()
    return sent


def next_due(session: Session) -> datetime | None:
    """When the earliest pending delivery is due (None when nothing is pending)."""
    return session.scalar(
        select(WebhookDelivery.next_attempt_at)
        # A test delivery being sent is pending with no next attempt: the retry loop never takes it.
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at.is_not(None))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
    )


def deliveries(session: Session, limit: int = 100) -> list[WebhookDelivery]:
    """The most recent delivery attempts, newest first."""
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)))


def webhooks(session: Session) -> list[Webhook]:
    """Every webhook, oldest first."""
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))
