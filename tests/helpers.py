"""Helpers shared by test modules (a test module never imports another)."""

from __future__ import annotations

import math
import random
import re
from datetime import datetime, time
from http.server import BaseHTTPRequestHandler

import pandas as pd
from sqlalchemy import delete, select, update

from feedback import audit
from feedback.db import utcnow
from feedback.models import (
    AuditEvent,
    AuditHead,
    DecisionCount,
)
from feedback.overrides import rollup
from feedback.review import decisions, ingest
from feedback.schemas import RecommendationIn
from tests.factories import (
    PASSWORD,
    TEST_ACTOR,
    make_case,
    payload,
)

# Reads that need a model named in the query string.
QUERY = {
    "api.compare_versions": "?model=claims&a=v1&b=v1",
    "api.drift_rows": "?model=claims&version=v1",
    **{
        endpoint: "?model=claims"
        for endpoint in (
            "api.alerts",
            "api.accuracy_by",
            "api.action_matrix",
            "api.control_chart",
            "api.overrides_by",
            "api.reviewer_rows",
            "api.list_backlog",
            "api.export_decisions",
            "api.challenger_analytics",
        )
    },
}


def url_for_rule(rule: str, ids: dict[str, object]) -> str:
    """Fill the rule's placeholders with ids from the world."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(ids[m.group(1)]), rule)


GOOD = b"unit,period,value,treated,size\na,1,10,0,3\na,2,11,1,3\nb,1,9,0,5\nb,2,9.5,0,5\n"


def simulated_panel(rng, units=60, periods=8, effect=-3.0):
    """Units in three cohorts plus never treated, with unit and period effects."""
    cohort = rng.choice([0, 4, 6, 7], units)
    rows = []
    for u in range(units):
        level = rng.normal(50, 5)
        for t in range(1, periods + 1):
            treated = cohort[u] > 0 and t >= cohort[u]
            rows.append((f"u{u}", t, level + 0.5 * t + effect * treated + rng.normal(0, 1), int(treated)))
    return pd.DataFrame(rows, columns=["unit", "period", "value", "treated"])


def eventually_treated_panel(rng):
    """A simulated panel without never-treated units: every unit gets the AI in the end."""
    frame = simulated_panel(rng)
    return frame[frame.groupby("unit")["treated"].transform("max") == 1]


def decide_many(session, reviewer, version, n, start, override_rate):
    """Ingest `n` cases on a version and decide them; over_10k claims get `override_rate(band)`."""
    rng = random.Random(start)
    specs = []
    for i in range(start, start + n):
        band = "over_10k" if i % 4 == 0 else "under_10k"
        specs.append(
            RecommendationIn.model_validate(
                payload(i, model_version=version, segment={"claim_band": band}, site=rng.choice(["Leeds", "York"]))
            )
        )
    results = ingest.ingest_recommendations(session, TEST_ACTOR, items=specs)
    seen: dict[str, int] = {}
    for spec, result in zip(specs, results, strict=True):
        # Exactly the given share of each band is overridden, spread evenly (no sampling luck).
        band = spec.segment["claim_band"]
        j = seen[band] = seen.get(band, 0) + 1
        rate = override_rate(band)
        if math.floor(j * rate) > math.floor((j - 1) * rate):
            extra = {"action": "override", "final_action": "deny", "reason_code": "missing_context"}
        else:
            extra = {"action": "accept"}
        decisions.record_decision(session, reviewer, recommendation_id=result.id, **extra)


def statements(app, client, url):
    """How many SQL statements one GET runs."""
    from sqlalchemy import event

    from webapp.extensions import db

    ran = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: ran.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(ran)


def cut_tail(session, keep: int) -> None:
    """The first rewrite: delete every event after #keep and move the head back to it."""
    kept = session.scalar(select(AuditEvent).where(AuditEvent.seq == keep))
    session.execute(delete(AuditEvent).where(AuditEvent.seq > keep))
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=keep, last_hash=kept.hash))
    session.commit()


def rewrite_with_recomputed_hashes(session, seq: int) -> None:
    """The second rewrite: edit event #seq, then recompute its hash, every later one and the head's."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq)).all()
    prev = events[0].prev_hash
    events[0].actor = "mallory"
    for event in events:
        event.prev_hash = prev
        event.hash = prev = audit.event_hash(prev, event.__dict__)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
    session.commit()


def fetch(client, url, headers):
    """GET a streamed export and close it, as a WSGI server does (that ends its database transaction)."""
    with client.get(url, headers=headers) as response:
        response.get_data()
        return response


class Endpoint(BaseHTTPRequestHandler):
    """Answers /ok with 204 and /broken with 500, recording what it received."""

    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Endpoint.received.append((self.path, dict(self.headers), body))
        self.send_response(204 if self.path == "/ok" else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def snapshot(session):
    """Every count cell (its shards added together) as a comparable tuple."""
    session.expire_all()
    cells: dict[tuple, list[int]] = {}
    for c in session.scalars(select(DecisionCount)):
        counts = [getattr(c, column) for column in rollup.COLUMNS]
        total = cells.setdefault((c.model_version_id, c.day, c.dimension, c.key), [0] * len(counts))
        total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    return sorted((*cell, *counts) for cell, counts in cells.items())


def sign_in(page, url, email="rita@example.test", password=PASSWORD):
    """Sign in through the form (a Playwright page, the server's URL) and wait until it lets the person in."""
    page.goto(url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda address: "/login" not in address)


def store_on_days(session, version, days, values, start: int = 0) -> None:
    """Recommendations with these features created on given days (as imported history is), through ingest's store."""
    rows = []
    for i, (day, features) in enumerate(zip(days, values, strict=True)):
        spec = RecommendationIn.model_validate(
            payload(start + i, model_version=version.version, features=features, confidence=features.get("score", 0.8))
        )
        row = ingest.recommendation_row(spec, version, ingest.payload_hash(spec))
        row["created_at"] = datetime.combine(day, time(12), tzinfo=utcnow().tzinfo)
        rows.append(row)
    ingest.store_recommendations(session, TEST_ACTOR, rows=rows)
    session.commit()


def decide_case(session, reviewer, n, action):
    """Ingest case n and decide it through the decision service (an override denies, for missing context)."""
    rec = make_case(session, n)
    extra = {"final_action": "deny", "reason_code": "missing_context"} if action == "override" else {}
    decisions.record_decision(session, reviewer, recommendation_id=rec.id, action=action, **extra)
    return rec
