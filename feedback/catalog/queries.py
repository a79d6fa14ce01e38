"""The catalog in SQL: models, their versions and owners, by name."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from feedback.models import (
    Model,
    ModelOwner,
    ModelVersion,
    User,
)


def models_with_versions(session: Session) -> list[Model]:
    """Every model with its versions, by name."""
    return list(session.scalars(select(Model).options(joinedload(Model.versions)).order_by(Model.name)).unique())


def model_owners(session: Session, model_ids: Sequence[int] | None = None) -> dict[int, list[User]]:
    """The owners of each model (of every model unless told), by name."""
    query = select(ModelOwner.model_id, User).join(User, User.id == ModelOwner.user_id).order_by(User.name)
    if model_ids is not None:
        query = query.where(ModelOwner.model_id.in_(model_ids))
    owners: dict[int, list[User]] = {}
    for model_id, user in session.execute(query):
        owners.setdefault(model_id, []).append(user)
    return owners


def active_users(session: Session, role: str) -> list[User]:
    """Active users holding a role, by name."""
    return list(session.scalars(select(User).where(User.active, User.role == role).order_by(User.name)))


def models_by_name(session: Session) -> list[Model]:
    """Every model, by name."""
    return list(session.scalars(select(Model).order_by(Model.name)))


def model_id_of(session: Session, key: str) -> int | None:
    """The id of the model with this key (None if there is none)."""
    return session.scalar(select(Model.id).where(Model.key == key))


def versions_by_model_key(session: Session) -> list[tuple[str, str]]:
    """(model key, version) of every version, by model key."""
    rows = session.execute(
        select(Model.key, ModelVersion.version).join(Model, Model.id == ModelVersion.model_id).order_by(Model.key)
    )
    return [(key, version) for key, version in rows]


def version_labels(session: Session, model_id: int) -> list[str]:
    """A model's versions, oldest first."""
    return list(
        session.scalars(select(ModelVersion.version).where(ModelVersion.model_id == model_id).order_by(ModelVersion.id))
    )
