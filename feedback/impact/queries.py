"""Experiments in SQL: one experiment, the list, and how many units each arm has seen."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from feedback.errors import NotFound
from feedback.models import (
    Experiment,
    Exposure,
)


def get_experiment(session: Session, experiment_id: int) -> Experiment:
    """An experiment with its sites, or NotFound."""
    experiment = session.get(
        Experiment, experiment_id, options=[selectinload(Experiment.sites)], populate_existing=True
    )
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id}")
    return experiment


def list_experiments(session: Session) -> list[Experiment]:
    """Every experiment, newest first."""
    return list(
        session.scalars(
            select(Experiment).options(selectinload(Experiment.sites)).order_by(Experiment.created_at.desc())
        )
    )


@dataclass(frozen=True)
class ArmCount:
    """How many units one arm of an experiment has seen."""

    arm: str
    units: int
    exposures: int


def exposure_counts(session: Session, experiment_id: int) -> list[ArmCount]:
    """Distinct units and exposures per arm, counted in SQL."""
    rows = session.execute(
        select(Exposure.arm, func.count(func.distinct(Exposure.unit_id)), func.count())
        .where(Exposure.experiment_id == experiment_id)
        .group_by(Exposure.arm)
        .order_by(Exposure.arm)
    ).all()
    return [ArmCount(arm, units, n) for arm, units, n in rows]
