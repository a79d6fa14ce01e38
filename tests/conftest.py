"""Fixtures: every integration test runs on SQLite and on a real, throwaway PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from feedback import migrate
from feedback.accounts import security
from feedback.audit import GENESIS_HASH
from feedback.db import Base
from tests import pgserver

REQUIRE_POSTGRES = os.environ.get("COUNTERSIGN_REQUIRE_POSTGRES") == "1"
# Tests empty their databases, so audit checkpoints would outlive their chains: every app the tests
# make (and every server they start) writes none unless a test turns them on with a file of its own.
os.environ["COUNTERSIGN_AUDIT_CHECKPOINT_FILE"] = ""
# Argon2 at the product's cost spends tens of milliseconds a hash, and the suite makes thousands of
# users and sign-ins: tests hash with argon2id at its cheapest parameters, made for tests (hashes carry
# their parameters, so servers started as subprocesses, at full cost, still verify them).
security._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
TABLES = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "audit_head"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of our own, stopped and deleted after the run (or one given by URL)."""
    if os.environ.get("COUNTERSIGN_TEST_POSTGRES_URL"):
        yield os.environ["COUNTERSIGN_TEST_POSTGRES_URL"]
        return
    if pgserver.bindir() is None:
        message = "PostgreSQL server binaries not found (run scripts/setup.sh --test)"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    with pgserver.running_postgres() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'countersign.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def _empty(engine: Engine) -> None:
    """Delete every row and reset the audit chain."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE audit_head SET seq = 0, last_hash = :h WHERE id = 1"), {"h": GENESIS_HASH})


def app_config(database_url: str, **extra: Any) -> dict[str, Any]:
    """The settings of a test app: CSRF off for the test client, cookies over plain HTTP."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "JOBS_IN_PROCESS": True,  # background jobs on threads of the test process
        "SESSION_COOKIE_SECURE": False,
        **extra,
    }


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """An app on an empty, migrated database."""
    from webapp import create_app, worker
    from webapp.extensions import db

    application = create_app(app_config(database_url))
    with application.app_context():
        _empty(db.engine)
    yield application
    assert worker.drain(application), "background jobs still running 30 s after the test"
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def session(app: Flask) -> Iterator[Any]:
    """A session of the test's own; no app context stays pushed, so requests stay isolated."""
    from webapp.extensions import db

    with app.app_context():
        own = db.sessionmaker()
    yield own
    own.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like test client."""
    return app.test_client()


@pytest.fixture
def htmx_client(app: Flask) -> FlaskClient:
    """A test client whose requests come from htmx."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_HX_REQUEST"] = "true"
    return test_client
