"""Hostile-input suite: every bad input gets a 4xx naming its field, and the database is untouched."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from feedback.db import Base

# Bookkeeping any authenticated request may touch without changing anything anyone acts on.
BOOKKEEPING = {"api_tokens.last_used_at"}


def database_fingerprint(app: Flask) -> str:
    """A digest of every row of every table (less the bookkeeping columns), so any write changes it."""
    from webapp.extensions import db

    digest = hashlib.sha256()
    with app.app_context(), db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if f"{table.name}.{c.name}" not in BOOKKEEPING]
            order = list(table.primary_key.columns) or columns
            for row in conn.execute(select(*columns).order_by(*order)):
                digest.update(repr((table.name, tuple(row))).encode())
    return digest.hexdigest()


def named_fields(response: Any) -> str:
    """Everything in an error answer that could name a field: the JSON error, or the HTML body."""
    if response.is_json:
        error = (response.get_json() or {}).get("error", {})
        return " ".join([str(error.get("message", "")), *map(str, (error.get("fields") or {}).keys())])
    return response.get_data(as_text=True)


@pytest.fixture
def fingerprint(app: Flask) -> Callable[[], str]:
    """Call before and after a bad request: the two digests must be equal."""
    return lambda: database_fingerprint(app)


@pytest.fixture(scope="module")
def module_app(database_url: str) -> Iterator[Flask]:
    """One app and world for a whole module of cases that may not change anything (each checks it)."""
    from tests.conftest import _empty, app_config
    from webapp import create_app, worker
    from webapp.extensions import db

    application = create_app(app_config(database_url))
    with application.app_context():
        _empty(db.engine)
    yield application
    worker.drain(application)
    with application.app_context():
        db.engine.dispose()
