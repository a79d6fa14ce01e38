"""Who may see whom, and who may change which model: the rules every service and page asks.

Identities. People's names and e-mails, as the deciding reviewer, claimer, escalator, assignee
or resolver of a case, are personal data: only admins see them, as exports already do. Everyone
else sees a stable pseudonym ("Reviewer 7KQ2M9"), the same on every page, API answer and CSV,
so reports can still be compared without naming anyone. A person always sees their own name.
Exception handlers also see the names of the people who can take an exception (other handlers
and admins): assigning work to a colleague needs to know who they are.

Actions. `MATRIX` says which roles may do what, one row per action; services check it with
`require`, views declare it with `login_required(action)`, and the menus read it. It is the
only place a role's rights are written down.

Models. An admin assigns owners to each model. A model owner changes only the models they own
(stages, versions, guardrails and alerts, exception rules and SLAs, backlog triage); admins
change every model; analysts and everyone else only read. `require(..., model_id=...)` checks
the ownership of the actions in `MODEL_CHANGES`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from feedback.audit import Actor
from feedback.errors import PermissionDenied
from feedback.models import ModelOwner, User


class Action(StrEnum):
    """What a person may be allowed to do; the value is the phrase a refusal uses."""

    REVIEW = "review cases"
    HANDLE_EXCEPTIONS = "handle exceptions"
    READ_RESOLUTION = "read exception resolution analytics"
    READ_MODELS = "read models and their analytics"
    REGISTER_MODELS = "register models"
    CHANGE_MODEL = "change this model"
    SEND_CASES = "send recommendations and outcomes"
    EXPORT = "export labelled data"
    READ_IMPACT = "read impact analyses"
    RUN_IMPACT = "run experiments and impact analyses"
    ADMINISTER = "administer people, model owners and webhooks"


F, X, M, A, D = "frontline", "exception_handler", "model_owner", "analyst", "admin"
# Who may do what: each action and the roles that may do it.
MATRIX: dict[Action, frozenset[str]] = {
    Action.REVIEW: frozenset({F, X, D}),
    Action.HANDLE_EXCEPTIONS: frozenset({X, D}),
    Action.READ_RESOLUTION: frozenset({X, M, A, D}),
    Action.READ_MODELS: frozenset({M, A, D}),
    Action.REGISTER_MODELS: frozenset({M, D}),
    Action.CHANGE_MODEL: frozenset({M, D}),
    Action.SEND_CASES: frozenset({M, D}),
    Action.EXPORT: frozenset({M, A, D}),
    Action.READ_IMPACT: frozenset({M, A, D}),
    Action.RUN_IMPACT: frozenset({A, D}),
    Action.ADMINISTER: frozenset({D}),
}
# Actions on one model: a model owner may take them only on the models they own (a model service's
# token sends cases and outcomes for its own model, never for another's).
MODEL_CHANGES = frozenset({Action.CHANGE_MODEL, Action.SEND_CASES})
# Roles whose holders handle exceptions (and so may be assigned one).
HANDLER_ROLES = tuple(sorted(MATRIX[Action.HANDLE_EXCEPTIONS]))


def allows(role: str, action: Action) -> bool:
    """Whether the role may take the action (on some model, for the actions in MODEL_CHANGES)."""
    return role in MATRIX[action]


def roles_allowed(action: Action) -> tuple[str, ...]:
    """The roles that may take the action."""
    return tuple(sorted(MATRIX[action]))


def require(who: User | Actor, action: Action, *, session: Session | None = None, model_id: int | None = None) -> None:
    """Raise PermissionDenied unless `who` may take the action (on this model, when one is given).

    `who` may be an audit actor: one without a user (the CLI, the demo, background jobs) acts for
    the operator and may do anything; one with a user is checked as that user.
    """
    if isinstance(who, Actor):
        if who.id is None:
            return
        if session is None:
            raise TypeError("checking an audit actor needs a session to find its user")
        found = session.get(User, who.id)
        if found is None:
            raise PermissionDenied(f"nobody may {action}")
        who = found
    if not allows(who.role, action):
        raise PermissionDenied(f"the {who.role.replace('_', ' ')} role may not {action}")
    if model_id is not None and action in MODEL_CHANGES:
        if session is None:
            raise TypeError("checking a model's owners needs a session")
        if not can_change_model(session, who, model_id):
            raise PermissionDenied(f"only this model's owners or an admin may {action}")


# Until the app sets the key (create_app does, from SECRET_KEY), a random one: pseudonyms are
# then unstable across processes, but never computable by someone who knows only the user ids.
_key = secrets.token_bytes(32)


def configure_pseudonyms(secret: str | bytes) -> None:
    """Derive the pseudonym key from the app's secret, so every host shows the same pseudonyms."""
    global _key
    raw = secret.encode() if isinstance(secret, str) else secret
    _key = hmac.new(raw, b"countersign pseudonyms", hashlib.sha256).digest()


def pseudonym(user_id: int) -> str:
    """The stable pseudonym of a person: a keyed hash of their id, so it cannot be reversed."""
    digest = hmac.new(_key, f"user:{user_id}".encode(), hashlib.sha256).digest()
    return "Reviewer " + base64.b32encode(digest[:5]).decode()[:6]


def sees_identity(viewer: User, person_id: int, person_role: str) -> bool:
    """Whether the viewer may see who this person is (see the module docstring)."""
    if viewer.role == "admin" or viewer.id == person_id:
        return True
    return viewer.role == "exception_handler" and person_role in HANDLER_ROLES


def label(viewer: User | None, person_id: int, name: str, role: str) -> str:
    """The name if the viewer may see it, else the pseudonym (always the pseudonym for no viewer)."""
    return name if viewer is not None and sees_identity(viewer, person_id, role) else pseudonym(person_id)


def person_name(viewer: User | None, person: User | None) -> str | None:
    """The person's name if the viewer may see it, else their pseudonym (None for nobody)."""
    if person is None:
        return None
    return label(viewer, person.id, person.name, person.role)


def labels(session: Session, viewer: User | None, ids: Iterable[int]) -> dict[int, str]:
    """How the viewer sees each of these people (one query)."""
    wanted = set(ids)
    found = session.execute(select(User.id, User.name, User.role).where(User.id.in_(wanted))).all()
    return {i: label(viewer, i, name, role) for i, name, role in found}


def person_with_label(session: Session, viewer: User | None, shown: str, among: Select[Any]) -> int | None:
    """The person (of the ids `among` selects) whom the viewer sees as `shown`, for drilling down a report."""
    for person_id, text in labels(session, viewer, session.scalars(among)).items():
        if text == shown:
            return person_id
    return None


def person_email(viewer: User | None, person: User | None) -> str | None:
    """The person's e-mail if the viewer may see it, else their pseudonym (None for nobody)."""
    if person is None:
        return None
    return label(viewer, person.id, person.email, person.role)


def owner_ids(session: Session, model_id: int) -> set[int]:
    """The users who own a model."""
    return set(session.scalars(select(ModelOwner.user_id).where(ModelOwner.model_id == model_id)))


def owned_model_ids(session: Session, user: User) -> set[int]:
    """The models a user owns."""
    return set(session.scalars(select(ModelOwner.model_id).where(ModelOwner.user_id == user.id)))


def can_change_model(session: Session, user: User, model_id: int) -> bool:
    """Whether the user may change this model: an admin, or one of its owners."""
    return user.role == "admin" or _owns(user, owner_ids(session, model_id))


def _owns(user: User, owners: set[int]) -> bool:
    """An admin, or a model owner among `owners`."""
    return user.role == "admin" or (allows(user.role, Action.CHANGE_MODEL) and user.id in owners)


def people_who_may_change(session: Session, model_id: int) -> list[User]:
    """The active people who may change this model (its owners and the admins), by name."""
    people = session.scalars(
        select(User)
        .where(User.active.is_(True), User.role.in_(roles_allowed(Action.CHANGE_MODEL)))
        .order_by(User.name, User.id)
    )
    owners = owner_ids(session, model_id)  # one query, not one per person
    return [person for person in people if _owns(person, owners)]
