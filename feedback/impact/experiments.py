"""Experiments on the AI itself: A/B tests of showing it, and staggered rollouts across sites.

Assignment is a pure function of the experiment and the case, so every worker (and anyone
re-checking later) computes the same arm; exposures record what each reviewer was shown.

The services take typed values: the API's schema and the form's parameters have already read
the text. What they check here are the experiment's own rules, worded for the person who broke
them, so the form and the API say the same thing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import Conflict, Problems, ValidationFailed
from feedback.impact.queries import get_experiment
from feedback.models import (
    EXPERIMENT_KINDS,
    EXPERIMENT_UNITS,
    Experiment,
    Model,
    RolloutSite,
    User,
)
from feedback.params import FIRST_DAY, LAST_DAY
from feedback.permissions import Action

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_NAME, MAX_HYPOTHESIS = 200, 4000


@dataclass(frozen=True)
class GoLive:
    """A site of a staggered rollout and when the AI goes live there (None: a comparison site, never)."""

    site: str
    at: datetime | None = None


def _require_analyst(user: User) -> None:
    permissions.require(user, Action.RUN_IMPACT)


def _check_name(name: str, problems: Problems) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        problems.invalid["name"] = f"give the experiment a name of at most {MAX_NAME} characters"
    return name


def _check_hypothesis(hypothesis: str, problems: Problems) -> str:
    hypothesis = hypothesis.strip()
    if len(hypothesis) > MAX_HYPOTHESIS:  # refused, never cut short: what was written is what is stored
        problems.invalid["hypothesis"] = f"must be at most {MAX_HYPOTHESIS} characters"
    return hypothesis


def _check_weight(weight: float, problems: Problems) -> float:
    if not 0 < weight < 1:  # NaN fails both comparisons
        problems.invalid["ai_weight"] = "must be a share strictly between 0 and 1 (0.5 for an even split)"
    return weight


def _check_sites(sites: Sequence[GoLive], problems: Problems) -> dict[str, datetime | None]:
    """A staggered rollout's sites and go-live times, as listed (a site listed twice keeps its first listing)."""
    schedule: dict[str, datetime | None] = {}
    for i, row in enumerate(sites):
        site = row.site.strip()
        if not site:
            continue  # a form's blank row
        if site in schedule:
            problems.repeated[f"sites[{i}].site"] = f"{site} is listed twice"
            continue  # the first listing stands, so the other rules judge the schedule as listed
        if row.at is not None and (row.at.tzinfo is None or not FIRST_DAY <= row.at.date() <= LAST_DAY):
            problems.invalid[f"sites[{i}].go_live"] = f"must be an aware time from {FIRST_DAY} to {LAST_DAY}"
        schedule[site] = row.at
    if not schedule:
        problems.invalid["sites"] = "list the sites in the rollout"
    elif all(when is None for when in schedule.values()):
        problems.invalid["sites"] = "give at least one site a go-live date"
    return schedule


def _check_identity(
    session: Session, *, key: str, model_id: int | None, kind: str, unit: str, problems: Problems
) -> dict[str, Any]:
    """The fields only a new experiment sets: its key, model, kind and unit."""
    key = key.strip()
    if not KEY_PATTERN.match(key):
        problems.invalid["key"] = "use 1-64 lower-case letters, digits, - or _"
    if model_id is None:
        problems.invalid["model_id"] = "choose a model"
    elif session.get(Model, model_id) is None:
        problems.unknown["model_id"] = f"no model {model_id}"
    if kind not in EXPERIMENT_KINDS:
        problems.invalid["kind"] = "must be ab or staggered"
    unit = "site" if kind == "staggered" else unit
    if unit not in EXPERIMENT_UNITS:
        problems.invalid["unit"] = "must be case, reviewer or site"
    return {"key": key, "model_id": model_id, "kind": kind, "unit": unit}


def create_experiment(
    session: Session,
    actor: User,
    *,
    key: str,
    name: str,
    model_id: int | None,
    kind: str,
    unit: str = "case",
    ai_weight: float = 0.5,
    hypothesis: str = "",
    sites: Sequence[GoLive] = (),
) -> Experiment:
    """A new experiment in draft; nothing changes for reviewers until it is started.

    An A/B test splits by `unit` with `ai_weight` the share shown the AI; a staggered rollout
    assigns by site and lists its `sites`, at least one with a go-live time.
    """
    _require_analyst(actor)
    problems = Problems()
    clean = _check_identity(session, key=key, model_id=model_id, kind=kind, unit=unit, problems=problems)
    clean["name"] = _check_name(name, problems)
    clean["hypothesis"] = _check_hypothesis(hypothesis, problems)
    if kind == "ab":
        clean["ai_weight"] = _check_weight(ai_weight, problems)
    schedule = _check_sites(sites, problems) if kind == "staggered" else {}
    problems.raise_any("the experiment is invalid")
    if session.scalar(select(Experiment.id).where(Experiment.key == clean["key"])) is not None:
        taken = f"an experiment called {clean['key']} already exists"
        raise Conflict(taken, {"key": taken})  # a valid experiment whose key is in use: 409, as for models
    experiment = Experiment(**clean, salt=secrets.token_hex(8), created_by_id=actor.id, status="draft")
    experiment.sites = [RolloutSite(site=s, go_live_at=when) for s, when in schedule.items()]
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


def update_experiment(
    session: Session,
    actor: User,
    *,
    experiment_id: int,
    row_version: int | None = None,
    name: str | None = None,
    hypothesis: str | None = None,
    ai_weight: float | None = None,
    sites: Sequence[GoLive] | None = None,
) -> Experiment:
    """Edit an experiment; what is None stays as it is.

    Once running, only its name, hypothesis and not-yet-reached go-live dates change. Given the
    `row_version` it was read at, an edit made meanwhile by someone else is a conflict.
    """
    _require_analyst(actor)
    experiment = get_experiment(session, experiment_id)
    if row_version is not None and row_version != experiment.row_version:
        raise Conflict("someone else changed this experiment; reload it and try again")
    if experiment.status == "stopped":
        raise Conflict("a stopped experiment cannot be changed")
    problems = Problems()
    clean: dict[str, Any] = {}
    if name is not None:
        clean["name"] = _check_name(name, problems)
    if hypothesis is not None:
        clean["hypothesis"] = _check_hypothesis(hypothesis, problems)
    if ai_weight is not None and experiment.kind == "ab":
        clean["ai_weight"] = _check_weight(ai_weight, problems)
    schedule = _check_sites(sites, problems) if sites is not None and experiment.kind == "staggered" else None
    problems.raise_any("the experiment is invalid")
    if experiment.status == "running":
        _check_running_change(experiment, clean, schedule)
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


def _check_running_change(
    experiment: Experiment, clean: dict[str, Any], schedule: dict[str, datetime | None] | None
) -> None:
    """A running experiment keeps its split, and its sites keep every go-live already reached."""
    fields: dict[str, str] = {}
    now = utcnow()
    if clean.get("ai_weight", experiment.ai_weight) != experiment.ai_weight:
        fields["ai_weight"] = "the split of a running test cannot change (it would bias the comparison)"
    if schedule is not None:
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
