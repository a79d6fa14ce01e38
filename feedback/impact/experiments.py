"""Experiments on the AI itself: A/B tests of showing it, and staggered rollouts across sites.

Assignment is a pure function of the experiment and the case, so every worker (and anyone
re-checking later) computes the same arm; exposures record what each reviewer was shown.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import Conflict, RepeatedInRequest, UnknownReference, ValidationFailed
from feedback.impact.queries import get_experiment
from feedback.models import (
    EXPERIMENT_KINDS,
    EXPERIMENT_UNITS,
    Experiment,
    Model,
    RolloutSite,
    User,
)
from feedback.params import FIRST_DAY, LAST_DAY, Id
from feedback.permissions import Action

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _require_analyst(user: User) -> None:
    permissions.require(user, Action.RUN_IMPACT)


def _parse_when(raw: Any, field: str, fields: dict[str, str]) -> datetime | None:
    """A go-live instant from a date or an ISO timestamp (dates mean midnight UTC); blank means never."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        parsed = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).strip())
    except ValueError:
        fields[field] = "must be a date (YYYY-MM-DD) or left blank for a comparison site"
        return None
    if not FIRST_DAY <= parsed.date() <= LAST_DAY:  # far-off years break date arithmetic downstream
        fields[field] = f"must be a date from {FIRST_DAY} to {LAST_DAY}"
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _validate(
    session: Session, data: Mapping[str, Any], experiment: Experiment | None
) -> tuple[dict[str, Any], dict[str, datetime | None] | None]:
    """Check the editable fields; returns clean values and the rollout schedule (None when not given)."""
    fields: dict[str, str] = {}
    repeated: dict[str, str] = {}
    unknown: dict[str, str] = {}
    clean: dict[str, Any] = {}
    taken = _validate_new(session, data, clean, fields, unknown) if experiment is None else ""
    kind = experiment.kind if experiment else clean.get("kind")
    if "name" in data or experiment is None:
        name = str(data.get("name") or "").strip()
        if not name or len(name) > 200:
            fields["name"] = "give the experiment a name of at most 200 characters"
        clean["name"] = name
    if "hypothesis" in data:
        clean["hypothesis"] = str(data.get("hypothesis") or "").strip()[:4000]
    if kind == "ab" and ("ai_weight" in data or experiment is None):
        try:
            weight = float(data.get("ai_weight", 0.5))
        except (TypeError, ValueError):
            weight = -1.0
        if not 0 < weight < 1:
            fields["ai_weight"] = "must be a share strictly between 0 and 1 (0.5 for an even split)"
        clean["ai_weight"] = weight
    schedule = _schedule(data.get("sites") or [], fields, repeated) if kind == "staggered" and "sites" in data else None
    if fields:
        raise ValidationFailed("the experiment is invalid", {**repeated, **unknown, **fields})
    if unknown:
        raise UnknownReference("no such model", unknown)
    if repeated:  # a property of objects in a list, which JSON Schema cannot state: a 409 within the request
        raise RepeatedInRequest("the experiment lists a site twice", repeated)
    if taken:
        raise Conflict(taken, {"key": taken})  # a valid experiment whose key is in use: 409, as for models
    return clean, schedule


def _validate_new(
    session: Session, data: Mapping[str, Any], clean: dict[str, Any], fields: dict[str, str], unknown: dict[str, str]
) -> str:
    """The fields only a new experiment sets (key, model, kind, unit); returns why its key is taken, if it is."""
    taken = ""
    key = str(data.get("key") or "").strip()
    if not KEY_PATTERN.match(key):
        fields["key"] = "use 1-64 lower-case letters, digits, - or _"
    elif session.scalar(select(Experiment.id).where(Experiment.key == key)) is not None:
        taken = f"an experiment called {key} already exists"
    clean["key"] = key
    try:  # an int, or its ASCII digits (never `²`, which str.isdigit() lets through)
        model_id = Id("model_id").convert(str(data.get("model_id")))
    except ValueError:
        model_id = None
    model = session.get(Model, model_id) if model_id else None
    if model_id is not None and model is None:
        unknown["model_id"] = f"no model {model_id}"
    elif model is None:
        fields["model_id"] = "choose a model"
    else:
        clean["model_id"] = model.id
    kind = data.get("kind")
    if kind not in EXPERIMENT_KINDS:
        fields["kind"] = "must be ab or staggered"
    clean["kind"] = kind
    unit = "site" if kind == "staggered" else data.get("unit")
    if unit not in EXPERIMENT_UNITS:
        fields["unit"] = "must be case, reviewer or site"
    clean["unit"] = unit
    return taken


def _schedule(rows: list[Any], fields: dict[str, str], repeated: dict[str, str]) -> dict[str, datetime | None]:
    """A staggered rollout's sites and go-live times, as listed (a site listed twice keeps its first listing)."""
    schedule = {}
    for i, row in enumerate(rows):
        site = str(row.get("site") or "").strip()
        if not site:
            continue
        if site in schedule:
            repeated[f"sites[{i}].site"] = f"{site} is listed twice"
            continue  # the first listing stands, so the other rules judge the schedule as listed
        schedule[site] = _parse_when(row.get("go_live"), f"sites[{i}].go_live", fields)
    if not schedule:
        fields["sites"] = "list the sites in the rollout"
    elif all(when is None for when in schedule.values()):
        fields["sites"] = "give at least one site a go-live date"
    return schedule


def create_experiment(session: Session, actor: User, *, data: Mapping[str, Any]) -> Experiment:
    """A new experiment in draft; nothing changes for reviewers until it is started."""
    _require_analyst(actor)
    clean, schedule = _validate(session, data, None)
    if clean["kind"] == "staggered" and schedule is None:
        raise ValidationFailed("the experiment is invalid", {"sites": "list the sites in the rollout"})
    experiment = Experiment(**clean, salt=secrets.token_hex(8), created_by_id=actor.id, status="draft")
    experiment.sites = [RolloutSite(site=s, go_live_at=when) for s, when in (schedule or {}).items()]
    session.add(experiment)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"an experiment called {clean['key']} already exists") from None
    audit.record(
        session,
        Actor(actor.id, actor.email),
        [Change("experiment.created", "experiment", experiment.id, _snapshot(experiment))],
    )
    session.commit()
    return experiment


def update_experiment(session: Session, actor: User, *, experiment_id: int, data: Mapping[str, Any]) -> Experiment:
    """Edit an experiment. Once running, only its name, hypothesis and not-yet-reached go-live dates change."""
    _require_analyst(actor)
    experiment = get_experiment(session, experiment_id)
    if "row_version" in data and str(data["row_version"]) != str(experiment.row_version):
        raise Conflict("someone else changed this experiment; reload it and try again")
    if experiment.status == "stopped":
        raise Conflict("a stopped experiment cannot be changed")
    clean, schedule = _validate(session, data, experiment)
    fields: dict[str, str] = {}
    now = utcnow()
    if experiment.status == "running" and clean.get("ai_weight", experiment.ai_weight) != experiment.ai_weight:
        fields["ai_weight"] = "the split of a running test cannot change (it would bias the comparison)"
    if schedule is not None and experiment.status == "running":
        before = {s.site: s.go_live_at for s in experiment.sites}
        for site, when in schedule.items():
            old = before.get(site)
            live = old is not None and old <= now
            moved = not _same_minute(when, old)
            if moved and (live or (when is not None and when <= now)):
                fields[f"sites.{site}"] = "a running rollout can only move dates that are still in the future"
        for site in set(before) - set(schedule):
            fields[f"sites.{site}"] = "a site cannot leave a running rollout"
    if fields:
        raise ValidationFailed("the change is not allowed", fields)
    before_snapshot = _snapshot(experiment)
    before_dates = {s.site: s.go_live_at for s in experiment.sites}
    for name, value in clean.items():
        setattr(experiment, name, value)
    if schedule is not None:
        current = {s.site: s for s in experiment.sites}
        experiment.sites = [
            _with_date(current.get(site) or RolloutSite(site=site), when) for site, when in schedule.items()
        ]
        for row in experiment.sites:  # a form sends minutes: keep the stored instant when unchanged
            if _same_minute(row.go_live_at, before_dates.get(row.site)):
                row.go_live_at = before_dates.get(row.site)
    return _save(session, actor, experiment, "experiment.updated", {"before": before_snapshot})


def _same_minute(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) < 60


def _with_date(row: RolloutSite, when: datetime | None) -> RolloutSite:
    row.go_live_at = when
    return row


def start_experiment(session: Session, actor: User, *, experiment_id: int) -> Experiment:
    """Start assigning: reviewers see the arms from now on."""
    _require_analyst(actor)
    experiment = get_experiment(session, experiment_id)
    if experiment.status != "draft":
        raise Conflict(f"the experiment is {experiment.status}; only a draft can start")
    experiment.status, experiment.started_at = "running", utcnow()
    return _save(session, actor, experiment, "experiment.started", {})


def stop_experiment(session: Session, actor: User, *, experiment_id: int) -> Experiment:
    """Stop assigning: everyone sees the AI again (if the version is visible)."""
    _require_analyst(actor)
    experiment = get_experiment(session, experiment_id)
    if experiment.status != "running":
        raise Conflict(f"the experiment is {experiment.status}; only a running one can stop")
    experiment.status, experiment.stopped_at = "stopped", utcnow()
    return _save(session, actor, experiment, "experiment.stopped", {})


def _save(session: Session, user: User, experiment: Experiment, action: str, extra: dict[str, Any]) -> Experiment:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("another experiment is already running on this model; stop it first") from None
    except StaleDataError:
        session.rollback()
        raise Conflict("someone else changed this experiment at the same time; reload it") from None
    audit.record(
        session,
        Actor(user.id, user.email),
        [Change(action, "experiment", experiment.id, {**_snapshot(experiment), **extra})],
    )
    session.commit()
    return experiment


def _snapshot(experiment: Experiment) -> dict[str, Any]:
    return {
        "key": experiment.key,
        "name": experiment.name,
        "kind": experiment.kind,
        "unit": experiment.unit,
        "ai_weight": experiment.ai_weight,
        "status": experiment.status,
        "sites": {s.site: s.go_live_at.isoformat() if s.go_live_at else None for s in experiment.sites},
    }
