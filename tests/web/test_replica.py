"""Analytics pages and exports on a read replica: a real PostgreSQL hot standby fed by streaming replication.

Pausing the standby's replay makes the routing visible: a page that reads the replica still
shows the old figures while the primary already holds the new decisions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from feedback import migrate
from feedback.review import decisions, ingest
from feedback.schemas import RecommendationIn
from tests import pgserver
from tests.conftest import _empty, app_config
from tests.factories import TEST_ACTOR, login, make_model, make_user, payload, token_for

# Every page and API call routed to the replica (read-only: a write there would fail on a standby).
REPLICA_READS = [
    "/models/claims/breakdown?by=site",
    "/models/claims/breakdown?by=site&format=csv",
    "/models/claims/breakdown?by=site&format=csv&table=matrix",
    "/models/claims/cases?by=site&cell=Leeds&all=1",
    "/models/claims/right",
    "/models/claims/right?format=csv&table=reviewers",
    "/models/claims?format=csv",
    "/models/claims?format=csv&table=chart",
    "/exceptions/dashboard",
    "/exceptions/dashboard.csv",
]
REPLICA_API_READS = [
    "/api/v1/analytics/overrides?model=claims",
    "/api/v1/analytics/overrides/compare?model=claims&a=v1&b=v1",
    "/api/v1/analytics/action-matrix?model=claims",
    "/api/v1/analytics/accuracy?model=claims",
    "/api/v1/analytics/control-chart?model=claims",
    "/api/v1/analytics/reviewers?model=claims",
    "/api/v1/analytics/exceptions/resolution",
    "/api/v1/exports/decisions?model=claims",
]


@pytest.fixture(scope="module")
def standby(postgres_url: str) -> Iterator[str]:
    engine = create_engine(postgres_url)
    migrate.upgrade(engine)
    engine.dispose()
    with pgserver.streaming_standby(postgres_url) as url:
        yield url


@pytest.fixture
def replica_app(postgres_url: str, standby: str) -> Iterator[Flask]:
    from webapp import create_app
    from webapp.extensions import db

    application = create_app(app_config(postgres_url, ANALYTICS_DATABASE_URL=standby))
    with application.app_context():
        _empty(db.engine)
    yield application
    with application.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def engines(replica_app: Flask) -> Iterator[tuple[Engine, Engine]]:
    from webapp.extensions import db

    with replica_app.app_context():
        yield db.engine, db.get_engine("analytics")


@pytest.fixture
def primary(replica_app: Flask) -> Iterator[Session]:
    """A session on the primary, with the claims model registered."""
    from webapp.extensions import db

    with replica_app.app_context():
        session = db.sessionmaker()
    make_model(session)
    yield session
    session.close()


def signed_in(app: Flask, session: Session, role: str) -> tuple[FlaskClient, dict[str, str]]:
    """A browser signed in as a new user of this role, and an API token header for the same user."""
    user = make_user(session, role)
    client = app.test_client()
    login(client, user)
    return client, token_for(app, session, user)


def caught_up(primary: Engine, replica: Engine, timeout: float = 30.0) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with primary.connect() as conn:
        # The insert position: with synchronous_commit off (the test server), commits may not be written yet.
        lsn = conn.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar()
    deadline = time.monotonic() + timeout
    with replica.connect() as conn:
        while conn.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:l AS pg_lsn)"), {"l": lsn}).scalar() is False:
            assert time.monotonic() < deadline, "the standby did not catch up"
            conn.rollback()
            time.sleep(0.05)


def decide(session: Any, count: int, start: int, action: str = "accept") -> None:
    items = [RecommendationIn.model_validate(payload(start + n)) for n in range(count)]
    reviewer = make_user(session)
    for stored in ingest.ingest_recommendations(session, TEST_ACTOR, items=items):
        extra = {"final_action": "deny", "reason_code": "missing_context"} if action == "override" else {}
        decisions.record_decision(session, reviewer, recommendation_id=stored.id, action=action, **extra)


def decided(client: Any, headers: dict[str, str]) -> int:
    response = client.get("/api/v1/analytics/overrides?model=claims", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json["total"]["decisions"])


def test_analytics_read_the_replica_and_actions_the_primary(replica_app, engines, primary):
    session, (primary_engine, replica) = primary, engines
    decide(session, 6, 0)
    client, headers = signed_in(replica_app, session, "model_owner")
    caught_up(primary_engine, replica)
    assert decided(client, headers) == 6

    with replica.connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
    try:
        decide(session, 4, 100, action="override")
        # The replica has not seen the four overrides; the overview (alerts, guardrails) reads the primary.
        assert decided(client, headers) == 6
        by_site = client.get("/models/claims/breakdown?by=site&format=csv").text.splitlines()
        assert by_site[1].startswith("Leeds,6,"), by_site
        overview = client.get("/models/claims").text
        assert '<span class="label">decisions</span><span class="value">10</span>' in overview
        with primary_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM decisions")).scalar() == 10
        ready = client.get("/readyz").json
        assert ready["status"] == "ok" and ready["checks"]["analytics_database"].startswith("ok")
    finally:
        with replica.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
    caught_up(primary_engine, replica)
    assert decided(client, headers) == 10


def test_every_routed_read_works_on_a_read_only_standby(replica_app, engines, primary):
    session = primary
    decide(session, 5, 0)
    decide(session, 3, 50, action="override")
    client, headers = signed_in(replica_app, session, "analyst")
    caught_up(*engines)
    for url in REPLICA_READS:
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:300])
    for url in REPLICA_API_READS:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text[:300])
        response.close()

    # A background export reads its rows from the standby and records its progress on the primary.
    created = client.post("/exports", data={"model": "claims", "format": "csv"})
    assert created.status_code == 302
    job_url = created.headers["Location"]
    deadline = time.monotonic() + 30
    while "Download" not in (page := client.get(job_url).text):
        assert "failed" not in page and time.monotonic() < deadline, page[-500:]
        time.sleep(0.1)
    download = client.get(job_url + "/download")
    assert download.status_code == 200
    assert len(download.data.decode().strip().splitlines()) == 1 + 8
    download.close()


def test_an_unreachable_replica_fails_only_the_analytics(app: Flask, session):
    """The replica down: analytics answer 503 with Retry-After, the queue and readiness carry on."""
    from webapp import create_app
    from webapp.extensions import db

    dead = f"postgresql://postgres@127.0.0.1:{pgserver.free_port()}/nowhere"
    broken = create_app(app_config(app.config["DATABASE_URL"], ANALYTICS_DATABASE_URL=dead))
    make_model(session)
    owner = make_user(session, "model_owner")
    client = broken.test_client()
    login(client, owner)
    try:
        response = client.get("/models/claims/breakdown")
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert client.get("/models/claims").status_code == 200
        reviewer = broken.test_client()
        login(reviewer, make_user(session))
        assert reviewer.get("/queue").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json["checks"]["analytics_database"] == "unavailable: OperationalError"
    finally:
        with broken.app_context():
            for engine in db.engines.values():
                engine.dispose()
