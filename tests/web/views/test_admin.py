"""Registering models and versions in the UI."""

from __future__ import annotations

from sqlalchemy import select

from feedback.accounts import services as accounts
from feedback.models import AuditEvent, Guardrail, Model, ModelVersion
from feedback.overrides import guardrails
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


def test_register_model_with_labels_from_form(session, client, htmx_client):
    login(client, make_user(session, "admin"))
    login(htmx_client, make_user(session, "admin", email="second@example.test"))
    response = htmx_client.post(
        "/admin/models",
        data={
            "key": "alerts",
            "name": "Alerts",
            "actions": "raise_alert | Raise an alert\ndismiss",
            "reason_codes": "other | Other",
            "segment_labels": "amount_band | Amount\namount_band.1k_10k | £1k to £10k\nchannel",
        },
    )
    assert response.status_code == 200, response.text
    model = session.scalar(select(Model).where(Model.key == "alerts"))
    assert model.actions == ["raise_alert", "dismiss"] and model.action_labels == {"raise_alert": "Raise an alert"}
    assert model.segment_labels == {
        "amount_band": {"label": "Amount", "values": {"1k_10k": "£1k to £10k"}},
        "channel": {"label": "Channel", "values": {}},
    }
    # Each code in the registry is shown with its label; an action without one reads in words.
    listed = client.get("/admin/models").text
    assert "Raise an alert" in listed and ">Dismiss <" in listed


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
    # Choosing a stage only asks: it says what will happen, and nothing changes until confirmed.
    asked = htmx_client.post(f"/admin/versions/{version.id}/stage", data={"stage": "production"})
    assert asked.status_code == 200 and "Change Claims v2 from shadow to production?" in asked.text
    assert "Reviewers will start seeing Claims v2&#39;s recommendations on its cases (0 open cases now)." in asked.text
    session.rollback()
    assert session.get(ModelVersion, version.id).stage == "shadow"
    response = htmx_client.post(
        f"/admin/versions/{version.id}/stage", data={"stage": "production", "from": "shadow", "confirm": "1"}
    )
    assert response.status_code == 200 and "Claims v2 is now production." in response.text
    session.rollback()  # end the test's read snapshot before looking again
    session.refresh(version)
    assert version.stage == "production"
    # A confirmation given for the stage it had before is refused.
    stale = htmx_client.post(
        f"/admin/versions/{version.id}/stage", data={"stage": "paused", "from": "shadow", "confirm": "1"}
    )
    assert stale.status_code == 409 and "Claims v2 is production now, not shadow; nothing changed." in stale.text
    session.rollback()
    assert session.get(ModelVersion, version.id).stage == "production"
    events = session.scalars(select(AuditEvent.details).where(AuditEvent.action == "model_version.stage_changed")).all()
    assert events == ['{"from":"shadow","to":"production"}']
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


def test_pausing_says_reviewers_will_stop_seeing_the_recommendations(session, htmx_client):
    make_model(session, "fraud", version="2026.1", actions=("raise_alert", "dismiss"))
    session.execute(Model.__table__.update().where(Model.key == "fraud").values(name="Payment fraud alerts"))
    session.commit()
    login(htmx_client, make_owner(session, "fraud"))
    version = session.scalar(select(ModelVersion))
    asked = htmx_client.post(f"/admin/versions/{version.id}/stage", data={"stage": "paused"})
    assert "Reviewers will stop seeing Payment fraud alerts 2026.1&#39;s recommendations" in asked.text
    assert "Yes, pause it" in asked.text and 'id="cancel-stage"' in asked.text


def test_removing_a_guardrail_is_confirmed_on_its_own_page(session, client, htmx_client):
    make_model(session)
    owner = make_owner(session)
    login(client, owner)
    login(htmx_client, owner)
    version = session.scalar(select(ModelVersion))
    guardrail = guardrails.add_guardrail(
        session,
        accounts.actor_of(owner),
        version_id=version.id,
        kind="override_rate_above",
        window_size=50,
        threshold=0.3,
        auto_pause=True,
    )
    listed = client.get("/admin/models").text
    assert "override rate over the last 50 decisions above 30%" in listed
    assert f"/admin/guardrails/{guardrail.id}/remove?next=/admin/models" in listed
    # The overview's remove button leads to the confirmation, and removes nothing by itself.
    sent = htmx_client.post(f"/models/claims/guardrails/{guardrail.id}/remove")
    assert sent.headers["HX-Redirect"] == f"/admin/guardrails/{guardrail.id}/remove?next=/models/claims"
    page = client.get(sent.headers["HX-Redirect"])
    assert page.status_code == 200 and "Remove this guardrail?" in page.text
    assert (
        "Claims v1 will no longer be watched for override rate over the last 50 decisions above 30%: "
        "a breach will not raise an alert or pause the version. Its past alerts stay." in page.text
    )
    unconfirmed = client.post(f"/admin/guardrails/{guardrail.id}/remove", data={"next": "/models/claims"})
    assert unconfirmed.status_code == 422 and "Nothing was removed" in unconfirmed.text
    session.rollback()
    assert session.get(Guardrail, guardrail.id).enabled
    done = client.post(f"/admin/guardrails/{guardrail.id}/remove", data={"next": "/models/claims", "confirm": "1"})
    assert done.status_code == 302 and done.location == "/models/claims"
    session.rollback()
    session.rollback()
    assert session.scalar(select(Guardrail.enabled).where(Guardrail.id == guardrail.id)) is False
    removed = session.scalar(select(AuditEvent).where(AuditEvent.action == "guardrail.removed"))
    assert '"auto_pause":true' in removed.details and removed.actor == owner.email
    # Another site is never where a confirmation goes back to.
    again = client.get(f"/admin/guardrails/{guardrail.id}/remove?next=//evil.example")
    assert "already removed" in again.text and 'href="//evil.example"' not in again.text
