"""The permissions matrix: the one place a role's rights are written down, and what `require` does with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedback import permissions
from feedback.audit import Actor
from feedback.errors import PermissionDenied
from feedback.models import ROLES, ModelOwner
from feedback.permissions import MATRIX, Action
from tests.factories import make_model, make_user

ROOT = Path(__file__).resolve().parents[3]
ROLE_NAMES = "|".join(ROLES)
# A literal list of two or more roles: a rule about who may do what, written outside the matrix.
ROLE_LIST = re.compile(rf"""[(\[{{]\s*['"]({ROLE_NAMES})['"]\s*,\s*['"]({ROLE_NAMES})['"]""")


def test_every_action_has_a_row_of_known_roles():
    assert set(MATRIX) == set(Action)
    for action, roles in MATRIX.items():
        assert roles and roles <= set(ROLES), action
    assert permissions.HANDLER_ROLES == ("admin", "exception_handler")


def test_no_role_list_is_written_outside_the_matrix():
    found = []
    for folder, pattern in (("feedback", "*.py"), ("webapp", "*.py"), ("templates", "*.html")):
        for path in (ROOT / folder).rglob(pattern):
            if path.name == "permissions.py" or path.relative_to(ROOT).as_posix() == "feedback/models/accounts.py":
                continue
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if ROLE_LIST.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("role", ROLES)
def test_require_follows_the_matrix_for_every_role_and_action(session, role):
    user = make_user(session, role)
    for action in Action:
        if action in MATRIX and role in MATRIX[action]:
            permissions.require(user, action)
        else:
            with pytest.raises(PermissionDenied, match=f"may not {action}"):
                permissions.require(user, action)


def test_changing_a_model_needs_its_ownership(session):
    model = make_model(session)
    other = make_model(session, key="fraud")
    owner, stranger, admin = (
        make_user(session, "model_owner"),
        make_user(session, "model_owner"),
        make_user(session, "admin"),
    )
    session.add(ModelOwner(model_id=model.id, user_id=owner.id))
    session.commit()
    permissions.require(owner, Action.CHANGE_MODEL, session=session, model_id=model.id)
    permissions.require(admin, Action.CHANGE_MODEL, session=session, model_id=other.id)
    for who, model_id in ((owner, other.id), (stranger, model.id)):
        with pytest.raises(PermissionDenied, match="only this model's owners or an admin"):
            permissions.require(who, Action.CHANGE_MODEL, session=session, model_id=model_id)
    assert {p.id for p in permissions.people_who_may_change(session, model.id)} == {owner.id, admin.id}


def test_an_audit_actor_is_checked_as_its_user_and_the_operator_may_do_anything(session):
    model = make_model(session)
    analyst = make_user(session, "analyst")
    permissions.require(Actor(None, "cli"), Action.ADMINISTER, session=session)
    with pytest.raises(PermissionDenied, match="analyst role may not change this model"):
        permissions.require(Actor(analyst.id, analyst.email), Action.CHANGE_MODEL, session=session, model_id=model.id)
    with pytest.raises(PermissionDenied, match="nobody may"):
        permissions.require(Actor(10**6, "gone@example.test"), Action.REVIEW, session=session)
