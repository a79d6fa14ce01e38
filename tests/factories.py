"""Small factories for test data, built through the real services."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.accounts import services as accounts
from feedback.accounts import tokens
from feedback.audit import Actor
from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.models import BacklogItem, Model, ModelOwner, Recommendation, User
from feedback.review import ingest
from feedback.schemas import ModelIn, ModelVersionIn, RecommendationIn

PASSWORD = "correct horse battery"
TEST_ACTOR = Actor(None, "test")
_serial = itertools.count(1)


def make_user(session: Session, role: str = "frontline", email: str | None = None, name: str = "") -> User:
    """A user with the test password."""
    email = email or f"{role}-{next(_serial)}@example.test"
    return accounts.create_user(session, TEST_ACTOR, email=email, role=role, password=PASSWORD, name=name)


def make_owner(session: Session, key: str = "claims", email: str | None = None, name: str = "") -> User:
    """A model owner who owns the model `key` (which must exist): only owners and admins change a model."""
    user = make_user(session, "model_owner", email=email, name=name)
    model_id = session.scalar(select(Model.id).where(Model.key == key))
    assert model_id is not None, f"register {key} first"
    session.add(ModelOwner(model_id=model_id, user_id=user.id))
    session.commit()
    return user


def make_model(
    session: Session,
    key: str = "claims",
    version: str = "v1",
    stage: str = "production",
    actions: tuple[str, ...] = ("pay", "review", "deny"),
) -> Any:
    """A model (three actions unless told) with one version."""
    model = catalog.register_model(
        session,
        TEST_ACTOR,
        spec=ModelIn(
            key=key,
            name=key.capitalize(),
            actions=list(actions),
            reason_codes=[
                {"code": "missing_context", "label": "Missing context"},
                {"code": "policy_exception", "label": "Policy exception"},
            ],
        ),
    )
    catalog.add_model_version(session, TEST_ACTOR, model_key=key, spec=ModelVersionIn(version=version, stage=stage))
    return model


def payload(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid ingest payload for the `claims` model."""
    body: dict[str, Any] = {
        "model": "claims",
        "model_version": "v1",
        "external_id": f"EXT-{n}",
        "subject": f"Claim {n}",
        "site": "Leeds",
        "segment": {"claim_band": "over_10k"},
        "recommended_action": "pay",
        "confidence": 0.8,
        "explanation": {
            "summary": "Routine claim",
            "factors": [
                {"name": "amount", "value": 12000, "contribution": -0.3},
                {"name": "documents", "value": True, "contribution": 0.2},
            ],
        },
        "features": {"amount": 12000},
        "due_at": (utcnow() + timedelta(hours=n)).isoformat(),
    }
    body.update(overrides)
    return body


def make_case(session: Session, n: int = 1, **overrides: Any) -> Recommendation:
    """An ingested, open case."""
    result = ingest.ingest_recommendations(
        session, TEST_ACTOR, items=[RecommendationIn.model_validate(payload(n, **overrides))]
    )
    rec = session.get(Recommendation, result[0].id)
    assert rec is not None
    return rec


def login(client: FlaskClient, user: User) -> None:
    """Sign a test client in."""
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.text


def sign_in_cookie(client: FlaskClient, user: User, **fields: Any) -> None:
    """Give a test client the session cookie /login would issue (or `fields` changed), without signing in."""
    from webapp.auth import session_fields

    with client.session_transaction() as cookie:
        cookie.update({**session_fields(user.id, user.session_generation), **fields})
        cookie.permanent = True


def token_for(app: Flask, session: Session, user: User) -> dict[str, str]:
    """Authorization header with a fresh token for the user."""
    token = tokens.create_token(session, TEST_ACTOR, email=user.email)
    return {"Authorization": f"Bearer {token}"}


def shown_token(html: str) -> str:
    """The token a review panel's decision forms carry (issued for the case it shows, to its reviewer)."""
    import re

    found = re.search(r'name="shown" value="([^"]*)"', html)
    assert found is not None, "no decision form on this page"
    return found.group(1)


def backlog_item(model_id: int, version_id: int, title: str = "v1 is overridden more at Leeds") -> BacklogItem:
    """An unsaved backlog item for the pattern site=Leeds, with plausible counts (the caller adds it)."""
    return BacklogItem(
        model_id=model_id,
        model_version_id=version_id,
        pattern_key="site=Leeds",
        conditions=[{"dim": "site", "kind": "category", "value": "Leeds"}],
        title=title,
        cases=10,
        overrides=5,
        rate=0.5,
        rate_low=0.2,
        rate_high=0.8,
        baseline=0.1,
        excess=4.0,
        q_value=0.01,
        wrong_share=0.5,
        priority=2.0,
    )
