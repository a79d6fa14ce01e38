"""Fixtures of the domain tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database of this test's own on each backend, which it may downgrade (each worker has its own server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite'}"
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS scratch"))
        conn.execute(text("CREATE DATABASE scratch"))
    yield server.set(database="scratch").render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE scratch"))
    admin.dispose()
