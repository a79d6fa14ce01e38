"""Outcomes API: idempotent on (case, source), all-or-nothing, every bad field named."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from feedback.models import Outcome
from tests.factories import make_case, make_model, make_owner, make_user, token_for

OBSERVED = "2026-05-01T10:00:00+00:00"


@pytest.fixture
def api(app, session, client):
    """Two cases and a model service's token."""
    make_model(session)
    cases = [make_case(session, n) for n in (1, 2)]
    return {
        "client": client,
        "headers": token_for(app, session, make_owner(session)),
        "cases": cases,
        "session": session,
    }


def post(api, body):
    """POST to the outcomes endpoint."""
    return api["client"].post("/api/v1/outcomes", json=body, headers=api["headers"])


def stored(api) -> int:
    """Outcomes in the database."""
    api["session"].rollback()
    return api["session"].scalar(select(func.count()).select_from(Outcome))


def test_single_outcome_by_id_then_replay_then_conflict(api):
    rec = api["cases"][0]
    body = {"recommendation_id": rec.id, "outcome": "deny", "observed_at": OBSERVED, "source": "ledger"}
    first = post(api, body)
    assert first.status_code == 201
    assert first.json == {"id": first.json["id"], "recommendation_id": rec.id, "source": "ledger", "created": True}
    assert post(api, body).status_code == 200
    changed = post(api, {**body, "outcome": "pay"})
    assert changed.status_code == 409 and "source" in changed.json["error"]["fields"]
    assert stored(api) == 1


def test_batch_by_model_and_external_id_with_numbers(api):
    batch = [
        {"model": "claims", "external_id": "EXT-1", "outcome": "pay", "observed_at": OBSERVED, "source": "ledger"},
        {"model": "claims", "external_id": "EXT-2", "outcome": 1234.5, "observed_at": OBSERVED, "source": "payout"},
    ]
    response = post(api, batch)
    assert response.status_code == 201 and [i["created"] for i in response.json["items"]] == [True, True]
    api["session"].rollback()
    values = dict(api["session"].execute(select(Outcome.source, Outcome.value)).all())
    assert values == {"ledger": None, "payout": 1234.5}


def test_bad_items_are_named_and_nothing_is_stored(api):
    rec = api["cases"][0]
    batch = [
        {"recommendation_id": rec.id, "outcome": "pay", "observed_at": OBSERVED, "source": "ok"},
        {"recommendation_id": rec.id, "outcome": "launch", "observed_at": OBSERVED, "source": "a"},
        {"recommendation_id": 999999, "outcome": "pay", "observed_at": OBSERVED, "source": "b"},
        {"model": "claims", "external_id": "NOPE", "outcome": "pay", "observed_at": OBSERVED, "source": "c"},
        {"recommendation_id": rec.id, "model": "claims", "outcome": "pay", "observed_at": OBSERVED, "source": "d"},
        {"recommendation_id": rec.id, "outcome": "pay", "observed_at": "2026-05-01T10:00:00", "source": "e"},
    ]
    response = post(api, batch)
    assert response.status_code == 422
    fields = response.json["error"]["fields"]
    assert "timestamp with a time zone" in fields["[5].observed_at"]
    assert stored(api) == 0
    response = post(api, batch[:5])
    assert response.status_code == 422  # item [4] breaks a rule the schema states, which comes first
    fields = response.json["error"]["fields"]
    assert fields == {
        "[1].outcome": "a label must be one of pay, review, deny (or send a number)",
        "[2].recommendation_id": "no case 999999",
        "[3].external_id": "no case 'NOPE' for model 'claims'",
        "[4].recommendation_id": "name the case by recommendation_id, or by model and external_id",
    }
    assert stored(api) == 0


def test_single_object_errors_have_no_batch_prefix(api):
    response = post(api, {"recommendation_id": 999999, "outcome": "pay", "observed_at": OBSERVED, "source": "x"})
    assert response.status_code == 404 and response.json["error"]["fields"] == {"recommendation_id": "no case 999999"}
    assert response.json["error"]["code"] == "unknown_reference"


def test_reviewers_may_not_report_outcomes(app, session, api):
    headers = token_for(app, session, make_user(session, "frontline"))
    body = {"recommendation_id": api["cases"][0].id, "outcome": "pay", "observed_at": OBSERVED, "source": "x"}
    assert api["client"].post("/api/v1/outcomes", json=body, headers=headers).status_code == 403
