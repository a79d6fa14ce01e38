"""Per-model ownership: an admin assigns owners; owners change only their own models; analysts read all."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from feedback.accounts import services as accounts
from feedback.catalog import services as catalog
from feedback.errors import PermissionDenied
from feedback.models import Alert, AuditEvent, Guardrail, ModelOwner, ModelVersion
from tests.factories import (
    TEST_ACTOR,
    backlog_item,
    login,
    make_case,
    make_model,
    make_owner,
    make_user,
    payload,
    token_for,
)
from tests.web.hostile.conftest import database_fingerprint

FIRST_ACTION = {"claims": "pay", "fraud": "allow"}


@pytest.fixture
def two(app: Flask, session) -> dict[str, Any]:
    """Two models: `claims` owned by Omar, `fraud` owned by Fay; a guardrail, alert and backlog item on each."""
    make_model(session, "claims")
    make_model(session, "fraud", actions=("allow", "block"))
    omar = make_owner(session, "claims", email="omar@example.test", name="Omar")
    fay = make_owner(session, "fraud", email="fay@example.test", name="Fay")
    ids: dict[str, Any] = {}
    for key in ("claims", "fraud"):
        version = session.scalar(select(ModelVersion).join(ModelVersion.model).where(ModelVersion.model.has(key=key)))
        guardrail = Guardrail(model_version_id=version.id, kind="override_rate_above", window_size=50, threshold=0.5)
        session.add(guardrail)
        session.flush()
        alert = Alert(guardrail_id=guardrail.id, model_version_id=version.id, message="breach")
        item = backlog_item(version.model_id, version.id, "overridden at Leeds")
        version.stage = "paused"
        session.add_all([alert, item])
        session.commit()
        make_case(session, 100, model=key, recommended_action=FIRST_ACTION[key])  # for the outcome feed
        ids[key] = {"version": version.id, "guardrail": guardrail.id, "alert": alert.id, "item": item.id}
    return {"omar": omar, "fay": fay, "ids": ids}


def writes(key: str, ids: dict[str, int]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every change a model owner can make to model `key`, as (method, URL, body): pages and API, feeds included."""
    action = FIRST_ACTION.get(key, "pay")
    outcome = {"model": key, "external_id": "EXT-100", "outcome": action, "source": "ledger"}
    form = {
        "guardrail": {"version_id": str(ids["version"]), "kind": "override_rate_above", "window_size": "50"},
    }
    return [
        ("POST", f"/admin/models/{key}/versions", {"data": {"version": "v9", "stage": "shadow"}}),
        (
            "POST",
            f"/admin/versions/{ids['version']}/stage",
            {"data": {"stage": "production", "confirm": "1", "from": "paused"}},
        ),
        ("POST", f"/admin/models/{key}/sla", {"data": {"policy.high": "6"}}),
        ("POST", f"/admin/versions/{ids['version']}/rules", {"data": {"min_confidence": "0.5"}}),
        ("POST", f"/models/{key}/guardrails", {"data": {**form["guardrail"], "threshold_pct": "40"}}),
        ("POST", f"/admin/guardrails/{ids['guardrail']}/remove", {"data": {"confirm": "1"}}),
        ("POST", f"/models/{key}/versions/{ids['version']}/resume", {}),
        ("POST", f"/models/{key}/alerts/{ids['alert']}/acknowledge", {}),
        ("POST", f"/models/{key}/backlog/refresh", {}),
        ("POST", f"/backlog/{ids['item']}", {"data": {"status": "triaged"}}),
        ("API POST", f"/api/v1/models/{key}/versions", {"json": {"version": "v9"}}),
        ("API POST", f"/api/v1/backlog/refresh?model={key}", {"json": {}}),
        ("API PATCH", f"/api/v1/backlog/{ids['item']}", {"json": {"status": "triaged"}}),
        ("API POST", "/api/v1/recommendations", {"json": payload(7, model=key, recommended_action=action)}),
        ("API POST", "/api/v1/outcomes", {"json": {**outcome, "observed_at": "2026-06-01T09:00:00+00:00"}}),
    ]


WRITES = [w[:2] for w in writes("KEY", {"version": 0, "guardrail": 0, "alert": 0, "item": 0})]


@pytest.mark.parametrize("index", range(len(WRITES)), ids=[f"{m} {u}" for m, u in WRITES])
def test_an_owner_cannot_change_someone_elses_model(app: Flask, session, two, index):
    method, url, body = writes("fraud", two["ids"]["fraud"])[index]
    client = app.test_client()
    headers = {}
    if method.startswith("API "):
        headers, method = token_for(app, session, two["omar"]), method.removeprefix("API ")
    else:
        login(client, two["omar"])
    before = database_fingerprint(app)
    response = client.open(url, method=method, headers=headers, **body)
    assert response.status_code == 403, response.text
    assert database_fingerprint(app) == before


@pytest.mark.parametrize("index", range(len(WRITES)), ids=[f"{m} {u}" for m, u in WRITES])
def test_an_owner_changes_their_own_model(app: Flask, session, two, index):
    method, url, body = writes("claims", two["ids"]["claims"])[index]
    client = app.test_client()
    headers = {}
    if method.startswith("API "):
        headers, method = token_for(app, session, two["omar"]), method.removeprefix("API ")
    else:
        login(client, two["omar"])
    before = database_fingerprint(app)
    response = client.open(url, method=method, headers=headers, **body)
    assert response.status_code < 400, response.text
    assert database_fingerprint(app) != before


def test_an_admin_changes_any_model_and_an_analyst_reads_every_model_but_changes_none(app: Flask, session, two):
    admin, analyst = make_user(session, "admin"), make_user(session, "analyst")
    ids = two["ids"]["fraud"]
    admin_client, analyst_client = app.test_client(), app.test_client()
    login(admin_client, admin)
    login(analyst_client, analyst)
    for url in (
        "/admin/models",
        "/models/fraud",
        "/models/claims",
        "/models/fraud/backlog",
        "/admin/models/fraud/settings",
    ):
        page = analyst_client.get(url)
        assert page.status_code == 200 and 'name="stage"' not in page.text and "Save SLAs" not in page.text
    assert analyst_client.post(f"/admin/versions/{ids['version']}/stage", data={"stage": "pilot"}).status_code == 403
    changed = admin_client.post(
        f"/admin/versions/{ids['version']}/stage", data={"stage": "pilot", "confirm": "1", "from": "paused"}
    )
    assert changed.status_code == 200 and "is now pilot" in changed.text


def test_the_models_page_offers_changes_only_on_owned_models(app: Flask, session, two):
    client = app.test_client()
    login(client, two["omar"])
    page = client.get("/admin/models").text
    assert 'aria-label="Stage of claims v1"' in page and 'aria-label="Stage of fraud v1"' not in page
    assert "Owners:</strong> Omar" in page and "Owners:</strong> Fay" in page
    assert "Save owners" not in page  # only admins assign owners


def test_services_refuse_a_non_owner_whatever_calls_them(session, two):
    with pytest.raises(PermissionDenied, match="only this model's owners"):
        catalog.set_version_stage(
            session, accounts.actor_of(two["omar"]), version_id=two["ids"]["fraud"]["version"], stage="retired"
        )
    # The CLI and the demo act for the operator, without a user.
    catalog.set_version_stage(session, TEST_ACTOR, version_id=two["ids"]["fraud"]["version"], stage="retired")


def test_an_admin_assigns_owners_in_the_ui_audited(app: Flask, session, two):
    admin = make_user(session, "admin", name="Ada")
    client = app.test_client()
    login(client, admin)
    page = client.get("/admin/models").text
    assert "Save owners" in page and 'value="omar@example.test"' in page
    response = client.post(
        "/admin/models/fraud/owners",
        data={"owner": ["omar@example.test", "fay@example.test"]},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "fraud is now owned by Fay, Omar." in response.text
    session.rollback()
    owners = session.scalars(select(ModelOwner.user_id).where(ModelOwner.model_id == 2)).all()
    assert sorted(owners) == sorted([two["omar"].id, two["fay"].id])
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "model.owners_changed").order_by(AuditEvent.seq.desc())
    ).first()
    assert event.actor == admin.email and "omar@example.test" in event.details
    # Omar can now change fraud too.
    omar = app.test_client()
    login(omar, two["omar"])
    assert (
        omar.post(f"/admin/versions/{two['ids']['fraud']['version']}/stage", data={"stage": "pilot"}).status_code == 200
    )
    refused = client.post("/admin/models/fraud/owners", data={"owner": ["nobody@example.test"]})
    assert refused.status_code == 409 and "not an active model owner: nobody@example.test" in refused.text


def test_the_owners_api_is_for_admins_and_validates(app: Flask, session, two):
    client = app.test_client()
    admin = token_for(app, session, make_user(session, "admin"))
    analyst = make_user(session, "analyst", email="ana@example.test")
    url = "/api/v1/models/claims/owners"
    assert client.put(url, json={"owners": []}, headers=token_for(app, session, two["omar"])).status_code == 403
    before = database_fingerprint(app)
    bad = client.put(url, json={"owners": [analyst.email]}, headers=admin)
    assert bad.status_code == 409 and "owners" in bad.json["error"]["fields"]  # an analyst owns no model
    nobody = client.put(url, json={"owners": ["nobody@example.test"]}, headers=admin)
    assert nobody.status_code == 409 and "owners" in nobody.json["error"]["fields"]
    assert client.put(url, json={"owners": "x"}, headers=admin).status_code == 422
    assert client.put(url, json={"owners": ["fay\x00@example.test"]}, headers=admin).status_code in (400, 422)
    for junk in ("not an e-mail", "x" * 300 + "@example.test"):
        refused = client.put(url, json={"owners": [junk]}, headers=admin)
        assert refused.status_code == 422 and any(f.startswith("owners") for f in refused.json["error"]["fields"])
    assert client.put("/api/v1/models/nope/owners", json={"owners": []}, headers=admin).status_code == 404
    assert database_fingerprint(app) == before
    done = client.put(url, json={"owners": ["FAY@example.test"]}, headers=admin)
    assert done.status_code == 200 and done.json == {"model": "claims", "owners": ["fay@example.test"]}
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ModelOwner).where(ModelOwner.model_id == 1)) == 1
    # Omar no longer owns claims.
    refused = client.post(
        "/api/v1/models/claims/versions", json={"version": "v2"}, headers=token_for(app, session, two["omar"])
    )
    assert refused.status_code == 403


def test_registering_a_model_makes_its_model_owner_its_owner(app: Flask, session):
    owner = make_user(session, "model_owner")
    headers = token_for(app, session, owner)
    body = {
        "key": "loans",
        "name": "Loans",
        "actions": ["lend", "refuse"],
        "reason_codes": [{"code": "x", "label": "X"}],
    }
    assert app.test_client().post("/api/v1/models", json=body, headers=headers).status_code == 201
    session.rollback()
    assert session.scalars(select(ModelOwner.user_id)).all() == [owner.id]
    version = app.test_client().post("/api/v1/models/loans/versions", json={"version": "v1"}, headers=headers)
    assert version.status_code == 201


def test_a_backlog_item_is_owned_only_by_someone_who_may_change_its_model(app: Flask, session, two):
    client = app.test_client()
    login(client, two["omar"])
    item = two["ids"]["claims"]["item"]
    page = client.get(f"/backlog/{item}").text
    assert 'value="omar@example.test"' in page and 'value="fay@example.test"' not in page
    before = database_fingerprint(app)
    refused = client.post(f"/backlog/{item}", data={"owner": "fay@example.test"})
    assert refused.status_code == 409 and "must be one of this model&#39;s owners or an admin" in refused.text
    assert database_fingerprint(app) == before
    assert client.post(f"/backlog/{item}", data={"owner": "omar@example.test"}).status_code == 200
