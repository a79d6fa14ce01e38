"""Registering models and versions in the UI."""

from __future__ import annotations

from sqlalchemy import select

from feedback.models import Model, ModelVersion
from tests.factories import login, make_model, make_owner, make_user


def test_register_model_from_form(session, client, htmx_client):
    owner = make_user(session, "model_owner")
    login(client, owner)
    login(htmx_client, owner)
    assert "No models yet" in client.get("/admin/models").text
    response = htmx_client.post(
        "/admin/models",
        data={
            "key": "loans",
            "name": "Loan review",
            "actions": "approve, decline",
            "reason_codes": "income | Income not verified\nother",
        },
    )
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/admin/models"
    model = session.scalar(select(Model).where(Model.key == "loans"))
    assert model.actions == ["approve", "decline"]
    assert model.reason_codes == [
        {"code": "income", "label": "Income not verified"},
        {"code": "other", "label": "Other"},
    ]


def test_invalid_model_form_names_fields(session, htmx_client):
    login(htmx_client, make_user(session, "admin"))
    response = htmx_client.post(
        "/admin/models", data={"key": "bad key", "name": "", "actions": "one", "reason_codes": ""}
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="model-form"')
    assert "String should match pattern" in response.text and "actions" in response.text


def test_add_version_and_change_stage(session, client, htmx_client):
    make_model(session)
    owner = make_owner(session)
    login(client, owner)
    login(htmx_client, owner)
    assert client.post("/admin/models/claims/versions", data={"version": "v2", "stage": "shadow"}).status_code == 302
    version = session.scalar(select(ModelVersion).where(ModelVersion.version == "v2"))
    assert version.stage == "shadow"
    response = htmx_client.post(f"/admin/versions/{version.id}/stage", data={"stage": "production"})
    assert response.status_code == 200 and "Claims v2 is now production." in response.text
    session.rollback()  # end the test's read snapshot before looking again
    session.refresh(version)
    assert version.stage == "production"
    dup = client.post("/admin/models/claims/versions", data={"version": "v2"})
    assert dup.status_code == 422 and "already registered" in dup.text


def test_reviewers_cannot_edit_models(session, client):
    make_model(session)
    login(client, make_user(session, "frontline"))
    assert client.get("/admin/models").status_code == 403
    assert client.post("/admin/models/claims/versions", data={"version": "v9"}).status_code == 403
    analyst = client.application.test_client()
    login(analyst, make_user(session, "analyst"))
    page = analyst.get("/admin/models")
    assert page.status_code == 200 and "Register a model" not in page.text
    assert analyst.post("/admin/models", data={"key": "x"}).status_code == 403
