"""Readiness in a real browser: the owner writes a plan, the overview shows the scorecard, and "Promote" shows it
before acting: a go verdict promotes, keep collecting needs an admin's override with a reason."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from feedback.accounts import services as accounts
from feedback.catalog import services as catalog
from feedback.models import AuditEvent, ModelVersion
from feedback.readiness import services as readiness
from feedback.review import decisions
from feedback.schemas import ModelVersionIn
from tests.factories import TEST_ACTOR, make_case, make_owner, make_user
from tests.helpers import sign_in

pytestmark = pytest.mark.browser


def decide_many(session, reviewer, version, count, overrides, start):
    for n in range(start, start + count):
        rec = make_case(session, n, model_version=version)
        extra = (
            {"action": "override", "final_action": "deny", "reason_code": "missing_context"}
            if n - start < overrides
            else {"action": "accept"}
        )
        decisions.record_decision(session, reviewer, recommendation_id=rec.id, **extra)


def ask_for_production(page, url, version):
    page.goto(url + "/admin/models")
    form = page.locator(f"form.stage-form:has(select[aria-label='Stage of claims {version}'])")
    form.locator("select").select_option("production")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#confirm-stage #promotion-readiness")


def test_plan_scorecard_and_promotion(browser, live):
    session, url = live["session"], live["url"]
    for name in ("v2", "v3"):
        catalog.add_model_version(
            session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version=name, stage="shadow")
        )
    owner_user = make_owner(session, email="owner@example.test", name="Omar")
    make_user(session, "admin", email="admin@example.test", name="Ada")
    v2, v3 = (session.scalar(select(ModelVersion).where(ModelVersion.version == name)) for name in ("v2", "v3"))

    owner = browser.new_context().new_page()
    owner.errors = []
    owner.on("pageerror", lambda exc: owner.errors.append(str(exc)))
    sign_in(owner, url, "owner@example.test")

    # The owner writes v2's plan in the editor (shares in percent).
    owner.goto(url + "/models/claims/versions/v2/readiness/plan")
    owner.check("#use_override_rate")
    owner.select_option("select[name=direction_override_rate]", "at_most")
    owner.fill("input[name=threshold_override_rate]", "50")
    owner.fill("input[name=min_n_override_rate]", "20")
    owner.check("#use_decisions")
    owner.fill("input[name=threshold_decisions]", "30")
    owner.click("#save-plan")
    owner.wait_for_selector("text=Plan version 1 is in force.")
    assert "Override rate at most 50.0%, judged from 20 on" in owner.inner_text("#plan-version-1")

    # v2's pilot: 40 decisions, 4 overrides. v3's pilot (plan through the service): 2 overrides in 25, limit 5%.
    session.rollback()  # end the test's read transaction: it must see the plan the server stored
    actor = accounts.actor_of(owner_user)
    catalog.set_version_stage(session, actor, version_id=v2.id, stage="pilot")
    decide_many(session, live["reviewer"], "v2", 40, 4, 0)
    strict = [readiness.Criterion(metric="override_rate", direction="at_most", threshold=0.05, min_n=20)]
    readiness.register_plan(session, actor, version_id=v3.id, criteria=strict)
    catalog.set_version_stage(session, actor, version_id=v3.id, stage="pilot")
    decide_many(session, live["reviewer"], "v3", 25, 2, 100)

    # The model overview shows each version's scorecard, in words.
    owner.goto(url + "/models/claims")
    owner.wait_for_selector(f"#scorecard-{v2.id} .verdict")
    assert owner.inner_text(f"#scorecard-{v2.id} .verdict") == "Go"
    assert owner.inner_text(f"#scorecard-{v3.id} .verdict") == "Keep collecting"
    v2_rows = owner.inner_text(f"#scorecard-{v2.id} table")
    assert "Override rate" in v2_rows and "10.0%" in v2_rows and "at most 50.0%" in v2_rows
    assert "No readiness plan" in owner.inner_text("#readiness")  # v1 has none

    # Promote v2: the confirm step shows the scorecard first, then acts.
    ask_for_production(owner, url, "v2")
    assert "Go" in owner.inner_text("#promotion-readiness .verdict")
    owner.click("#confirm-stage-button")
    owner.wait_for_selector("text=Claims v2 is now production.")

    # Promote v3: keep collecting, so the owner gets no button...
    ask_for_production(owner, url, "v3")
    assert owner.inner_text("#promotion-readiness .verdict") == "Keep collecting"
    assert owner.locator("#promotion-needs-go").is_visible()
    assert owner.locator("#confirm-stage-button").count() == 0

    # ...and an admin may override, with a reason.
    admin = browser.new_context().new_page()
    admin.errors = []
    admin.on("pageerror", lambda exc: admin.errors.append(str(exc)))
    sign_in(admin, url, "admin@example.test")
    ask_for_production(admin, url, "v3")
    admin.fill("#override-reason", "Regulator deadline; watched daily")
    admin.click("#confirm-stage-button")
    admin.wait_for_selector("text=Claims v3 is now production.")
    session.expire_all()
    assert session.get(ModelVersion, v3.id).stage == "production"
    last = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "model_version.stage_changed").order_by(AuditEvent.seq.desc())
    ).first()
    assert json.loads(last.details) == {
        "from": "pilot",
        "to": "production",
        "readiness": "keep_collecting",
        "plan_version": 1,
        "override_reason": "Regulator deadline; watched daily",
    }
    assert owner.errors == [] and admin.errors == []
