"""The drift page: labels in the model's words, one sentence per headline number, chart with table and CSV."""

from __future__ import annotations

import csv
import html as html_text
import io
import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from feedback.db import utcnow
from feedback.models import Model, ModelVersion
from tests.factories import make_model, make_user, sign_in_cookie
from tests.helpers import store_on_days


@pytest.fixture
def page_world(app, session):
    """claims v1 whose "claim_amount" moved in the last 14 days; its segment labels name it."""
    make_model(session)
    model = session.scalar(select(Model))
    model.segment_labels = {"claim_amount": {"label": "Amount claimed"}}
    model.action_labels = {"pay": "Pay the claim"}
    version = session.scalar(select(ModelVersion))
    rng = random.Random(8)
    today = utcnow().date()
    days = [today - timedelta(days=(30 + i % 14) if i < 300 else i % 14) for i in range(600)]
    amounts = [rng.gauss(100 if i < 300 else 160, 20) for i in range(600)]
    store_on_days(
        session, version, days, [{"claim_amount": a, "channel": rng.choice(["web", "phone"])} for a in amounts]
    )
    clients = {}
    for role in ("analyst", "model_owner", "admin", "frontline", "exception_handler"):
        clients[role] = app.test_client()
        sign_in_cookie(clients[role], make_user(session, role))
    return clients


def test_page_in_the_models_words(page_world):
    response = page_world["analyst"].get("/models/claims/drift")
    html = response.text
    assert response.status_code == 200
    table = html.split('id="drift-table"')[1].split("</table>")[0]
    shown = html_text.unescape(re.sub(r"<[^>]+>", " ", table))  # the words people read, not the links' addresses
    assert "Amount claimed" in shown and "claim_amount" not in shown and "< 0.001" in shown
    assert "Recommended action" in html and "Confidence" in html
    assert 'id="drift-sentence">1 of the 4 things compared moved away from the reference: Amount claimed.' in html
    assert "The current window holds 300 recommendations of v1, the reference 300." in html
    assert "its first 14 days with recommendations (it was never in pilot)" in html
    # Small windows: the KS test decides, and the chart of the drifted feature is shown with its table.
    assert "Kolmogorov–Smirnov test" in html and 'data-chart="drift"' in html
    assert "Daily drift of Amount claimed" in html and 'data-chart-table="drift-data"' in html


def test_every_reader_role_and_no_one_else(page_world):
    for role in ("analyst", "model_owner", "admin"):
        assert page_world[role].get("/models/claims/drift?version=v1").status_code == 200
    for role in ("frontline", "exception_handler"):
        assert page_world[role].get("/models/claims/drift").status_code == 403


def test_csv_of_features_and_of_days(page_world):
    client = page_world["analyst"]
    features = list(csv.DictReader(io.StringIO(client.get("/models/claims/drift?format=csv").text)))
    assert {r["feature"] for r in features} == {
        "features.channel",
        "features.claim_amount",
        "confidence",
        "recommended_action",
    }
    drifted = {r["feature"]: r["drifted"] for r in features}
    assert drifted["features.claim_amount"] == "true" and drifted["features.channel"] == "false"
    days = client.get("/models/claims/drift?format=csv&table=daily&feature=features.claim_amount").text
    rows = list(csv.DictReader(io.StringIO(days)))
    assert len(rows) == 14 and sum(int(r["n_current"]) for r in rows) == 300
    assert all(float(r["distance"]) > 1 for r in rows)


def test_bad_query_is_refused(page_world):
    client = page_world["analyst"]
    assert client.get("/models/claims/drift?version=v9").status_code == 404
    assert client.get("/models/claims/drift?from=yesterday").status_code == 422
    assert client.get("/models/claims/drift?feature=<script>").status_code == 422
    assert client.get("/models/nope/drift").status_code == 404
