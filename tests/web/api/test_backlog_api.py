"""Backlog pages and API, labelled-data exports (streamed and in the background), webhooks."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import markupsafe
import pandas as pd
import pytest
from sqlalchemy import select

from feedback.backlog import queries as backlog_queries
from feedback.backlog import services as backlog
from feedback.models import Decision, Recommendation, WebhookDelivery
from tests.factories import TEST_ACTOR, login, make_model, make_owner, make_user, token_for
from tests.helpers import decide_many, fetch


@pytest.fixture
def mined(session):
    make_model(session)
    reviewer = make_user(session, name="Rita")
    decide_many(session, reviewer, "v1", 200, 1, lambda band: 0.5 if band == "over_10k" else 0.05)
    backlog.refresh(session, TEST_ACTOR, model_key="claims")
    return backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims"))[0]


def test_backlog_api_lists_and_patches(app, client, session, mined):
    owner = make_owner(session, email="omar@example.test")
    auth = token_for(app, session, owner)
    reviewer = token_for(app, session, make_user(session))
    assert client.get("/api/v1/backlog?model=claims", headers=reviewer).status_code == 403
    listed = client.get("/api/v1/backlog?model=claims", headers=auth)
    assert listed.status_code == 200
    top = listed.json["items"][0]
    assert top["id"] == mined.id and top["pattern"] == "segment.claim_band=over_10k" and top["status"] == "new"
    assert client.get("/api/v1/backlog", headers=auth).status_code == 422
    assert client.get("/api/v1/backlog?model=nope", headers=auth).status_code == 404
    patched = client.patch(
        f"/api/v1/backlog/{mined.id}",
        json={"status": "triaged", "owner": "omar@example.test", "row_version": top["row_version"]},
        headers=auth,
    )
    assert (
        patched.status_code == 200
        and patched.json["status"] == "triaged"
        and patched.json["owner"] == "omar@example.test"
    )
    stale = client.patch(
        f"/api/v1/backlog/{mined.id}", json={"status": "planned", "row_version": top["row_version"]}, headers=auth
    )
    assert stale.status_code == 409
    unknown = client.patch(f"/api/v1/backlog/{mined.id}", json={"status": "lost"}, headers=auth)
    assert unknown.status_code == 422 and "status" in unknown.json["error"]["fields"]
    unverifiable = client.patch(f"/api/v1/backlog/{mined.id}", json={"status": "verified"}, headers=auth)
    assert unverifiable.status_code == 409 and "no newer version" in unverifiable.json["error"]["fields"]["status"]
    assert (
        client.patch(f"/api/v1/backlog/{mined.id}", json={"status": "dismissed"}, headers=reviewer).status_code == 403
    )
    refreshed = client.post("/api/v1/backlog/refresh?model=claims", headers=auth)
    assert refreshed.status_code == 200 and refreshed.json["created"] == 0


def expected_rows(session):
    """An independent read of what the export must contain, through the ORM."""
    session.rollback()
    rows = []
    for d in session.scalars(select(Decision).order_by(Decision.id)):
        rec = session.get(Recommendation, d.recommendation_id)
        rows.append(
            {
                "case_id": rec.id,
                "external_id": rec.external_id,
                "label": d.final_action,
                "action": d.action,
                "reason_code": d.reason_code,
                "recommended_action": rec.recommended_action,
                "confidence": rec.confidence,
                "segment.claim_band": rec.segment["claim_band"],
                "feature.amount": float(rec.features["amount"]),
                "reviewer_role": "frontline",
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_exports_round_trip_through_pandas(app, client, session, mined, fmt):
    analyst = token_for(app, session, make_user(session, "analyst"))
    response = fetch(client, f"/api/v1/exports/decisions?model=claims&format={fmt}", analyst)
    assert response.status_code == 200
    data = io.BytesIO(response.data)
    frame = {"csv": pd.read_csv, "parquet": pd.read_parquet, "jsonl": lambda b: pd.read_json(b, lines=True)}[fmt](data)
    expected = expected_rows(session)
    assert len(frame) == len(expected) == 200
    got = frame[expected.columns].reset_index(drop=True)
    got["reason_code"] = got["reason_code"].where(got["reason_code"].notna(), None)
    expected["reason_code"] = expected["reason_code"].where(expected["reason_code"].notna(), None)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert "reviewer_email" not in frame.columns
    decided = pd.to_datetime(frame["decided_at"], utc=True)
    assert decided.is_monotonic_increasing  # the export is in decision order


def test_export_filters_and_personal_data(app, client, session, mined):
    analyst = token_for(app, session, make_user(session, "analyst"))
    admin = token_for(app, session, make_user(session, "admin"))
    item = fetch(client, f"/api/v1/exports/decisions?model=claims&backlog_item={mined.id}&overrides_only=1", analyst)
    frame = pd.read_csv(io.BytesIO(item.data))
    assert len(frame) == mined.overrides and set(frame["segment.claim_band"]) == {"over_10k"}
    assert set(frame["action"]) == {"override"}
    assert fetch(client, "/api/v1/exports/decisions?model=claims&include_reviewer=1", analyst).status_code == 403
    named = fetch(client, "/api/v1/exports/decisions?model=claims&include_reviewer=1&format=jsonl", admin)
    assert json.loads(named.data.splitlines()[0])["reviewer_email"].endswith("@example.test")
    bad = fetch(client, "/api/v1/exports/decisions?model=claims&format=xlsx&from=yesterday", analyst)
    assert bad.status_code == 422 and set(bad.json["error"]["fields"]) == {"format", "from"}
    assert fetch(client, "/api/v1/exports/decisions?model=nope", analyst).status_code == 404


def test_ui_export_runs_in_the_background_with_progress(client, session, mined):
    owner = make_user(session, "model_owner")
    login(client, owner)
    assert client.get(f"/exports?model=claims&backlog_item={mined.id}").status_code == 200
    queued = client.post("/exports", data={"model": "claims", "format": "parquet", "overrides_only": "1"})
    assert queued.status_code == 302
    job_url = queued.headers["Location"]
    deadline = time.monotonic() + 20
    while "every 1s" in (page := client.get(job_url, headers={"HX-Request": "true"}).text):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "Download" in page
    with client.get(f"{job_url}/download") as download:
        frame = pd.read_parquet(io.BytesIO(download.data))
    session.rollback()
    assert len(frame) == session.query(Decision).filter(Decision.action == "override").count()
    other = make_user(session, "model_owner")
    client.post("/logout")
    login(client, other)
    assert client.get(job_url).status_code == 404  # somebody else's export


def test_backlog_pages_triage_inline(client, session, mined):
    login(client, make_owner(session))
    page = client.get("/models/claims/backlog")
    assert page.status_code == 200 and str(markupsafe.escape(mined.title)) in page.text
    row = client.post(
        f"/backlog/{mined.id}",
        data={"status": "verified", "from": "list", "row_version": mined.row_version},
        headers={"HX-Request": "true"},
    )
    assert row.status_code == 409 and "no newer version" in row.text and "<html" not in row.text
    ok = client.post(f"/backlog/{mined.id}", data={"status": "planned", "from": "list"}, headers={"HX-Request": "true"})
    assert ok.status_code == 200 and "Now planned" in ok.text
    detail = client.get(f"/backlog/{mined.id}")
    assert detail.status_code == 200 and "Cases behind it" in detail.text and 'id="pattern-data"' in detail.text
    csv = pd.read_csv(io.StringIO(client.get(f"/backlog/{mined.id}?format=csv").text))
    assert csv["n"].sum() == mined.cases
    client.post("/logout")
    login(client, make_user(session))
    assert client.get("/models/claims/backlog").status_code == 403


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint on loopback: fails the first request, then accepts."""

    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(500 if len(Receiver.received) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_webhooks_are_signed_retried_and_logged(app, client, session):
    app.config["WEBHOOK_BACKOFF_SECONDS"] = 0.05
    from feedback.webhooks import services as webhooks

    webhooks.BACKOFF_SECONDS = 0.05
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = []
    try:
        make_model(session)
        admin = make_user(session, "admin")
        login(client, admin)
        bad = client.post("/admin/webhooks", data={"url": "ftp://x", "events": ["nope"]})
        assert bad.status_code == 422 and "http(s) URL" in bad.text
        url = f"http://127.0.0.1:{server.server_port}/hook"
        made = client.post("/admin/webhooks", data={"url": url, "events": ["model_version.created"]})
        assert made.status_code == 200
        session.rollback()
        secret = session.scalars(select(webhooks.Webhook)).one().secret
        assert secret in made.text  # shown once to the admin
        owner = token_for(app, session, make_owner(session))
        created = client.post(
            "/api/v1/models/claims/versions", json={"version": "v2", "stage": "shadow"}, headers=owner
        )
        assert created.status_code == 201, created.json
        deadline = time.monotonic() + 15
        while len(Receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(Receiver.received) == 2  # the 500 was retried
        headers, body = Receiver.received[-1]
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Countersign-Signature"] == expected
        assert json.loads(body)["data"]["version"] == "v2" and headers["X-Countersign-Event"] == "model_version.created"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            session.rollback()
            delivery = session.scalars(select(WebhookDelivery)).one()
            if delivery.status == "delivered":
                break
            time.sleep(0.05)
        assert delivery.status == "delivered" and delivery.attempts == 2 and delivery.last_status_code == 204
        log = client.get("/admin/webhooks")
        assert "delivered" in log.text and "model_version.created" in log.text
    finally:
        server.shutdown()
        server.server_close()
        webhooks.BACKOFF_SECONDS = 2.0
