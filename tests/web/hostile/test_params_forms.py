"""Hostile query strings and form fields: every page, form and API route answers a 4xx naming the field.

Ids, integers, numbers, dates, choices and switches are parsed by one strict parser
(`feedback.params`). Each case sends one bad value and checks the 4xx, that the answer names
the field, and that the database did not change at all. The cases cover every query parameter
and form field the app reads (`test_every_parameter_is_probed` holds the list to the url_map).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from feedback.impact import experiments
from feedback.impact import panels as impact_panels
from feedback.impact import runs as impact_runs
from feedback.models import AuditEvent, ModelVersion
from feedback.overrides import guardrails
from feedback.review import decisions
from tests.factories import TEST_ACTOR, backlog_item, login, make_case, make_model, make_user, token_for
from tests.helpers import simulated_panel
from tests.web.hostile.conftest import named_fields

BIG = "99999999999999999999"  # past any INTEGER column
SUPERSCRIPT_TWO = "²"  # str.isdigit() is true, int() fails
LONG = "x" * 2001
YEAR_1, YEAR_9999 = "0001-01-01", "9999-12-31"
TOO_LONG = "p" * 513  # longer than any password can be


@pytest.fixture(scope="module")
def app(module_app: Flask) -> Flask:
    """One app for the whole module (tests/web/hostile/conftest.py)."""
    return module_app


@pytest.fixture(scope="module")
def world(app: Flask) -> dict[str, Any]:
    """A model with cases, an exception, a backlog item, an experiment, a panel and a run; a client per role."""
    from webapp.extensions import db

    with app.app_context():
        session = db.sessionmaker()
    try:
        model = make_model(session)
        version_id = session.scalar(select(ModelVersion.id))
        roles = ("frontline", "exception_handler", "model_owner", "analyst", "admin")
        users = {role: make_user(session, role) for role in roles}
        case = make_case(session, 1)
        escalated = make_case(session, 2)
        decisions.record_decision(
            session, users["frontline"], recommendation_id=escalated.id, action="escalate", note="unclear"
        )
        exception_id = session.scalar(
            select(func.max(AuditEvent.entity_id)).where(AuditEvent.action == "exception.raised")
        )
        experiment = experiments.create_experiment(
            session,
            users["analyst"],
            key="ab",
            name="AB",
            model_id=model.id,
            kind="ab",
            unit="case",
        )
        frame = simulated_panel(np.random.default_rng(1), units=12, periods=4)
        panel = impact_panels.upload_panel(
            session, users["analyst"], name="panel", raw=frame.to_csv(index=False).encode()
        )
        options = {"control": "never", "method": "reg"}
        run = impact_runs.queue_panel_analysis(session, users["analyst"], panel_id=panel.id, **options)
        item = backlog_item(model.id, version_id, "v1 is overridden more at Leeds")
        session.add(item)
        session.commit()
        guardrail = guardrails.add_guardrail(
            session,
            TEST_ACTOR,
            version_id=version_id,
            kind="override_rate_above",
            window_size=100,
            threshold=0.5,
            auto_pause=False,
        )
        ids = {
            "rec": case.id,
            "exc": int(exception_id),
            "exp": experiment.id,
            "panel": panel.id,
            "run": run.id,
            "item": item.id,
            "version": version_id,
            "user": users["frontline"].id,
            "guardrail": guardrail.id,
        }
        clients: dict[str, FlaskClient] = {"anonymous": app.test_client()}
        for role, user in users.items():
            clients[role] = app.test_client()
            login(clients[role], user)
            clients[f"api:{role}"] = app.test_client()
            clients[f"api:{role}"].environ_base["HTTP_AUTHORIZATION"] = token_for(app, session, user)["Authorization"]
        return {"ids": ids, "clients": clients}
    finally:
        session.close()


# (role, method, path, form, field). Paths name rows as {rec}, {exc}, {exp}, {panel}, {run}, {item}, {version}, {user}.
ROW_NAMES = ("rec", "exc", "exp", "panel", "run", "item", "version", "user", "guardrail")
GUARDRAIL = {"version_id": "{version}", "kind": "override_rate_above", "window_size": "200", "threshold_pct": "20"}
EXPERIMENT = {"key": "probe", "name": "Probe", "model_id": "1", "kind": "ab", "unit": "case", "ai_weight": "0.5"}
EXPORT = {"model": "claims", "format": "csv"}
DECISION = {"action": "accept"}
API_EXPORT = "/api/v1/exports/decisions?model=claims"
OVERRIDES = "/api/v1/analytics/overrides?model=claims"
CASES: list[tuple[str, str, str, dict[str, str] | None, str]] = [
    # the review queue and the review screen (the queue's filter travels with the reviewer)
    ("frontline", "GET", f"/queue?model={BIG}", None, "model"),
    ("frontline", "GET", f"/queue?model={SUPERSCRIPT_TWO}", None, "model"),
    ("frontline", "GET", "/queue?model=0", None, "model"),
    ("frontline", "GET", "/queue?model=-1", None, "model"),
    ("frontline", "GET", "/queue?model=1&model=2", None, "model"),
    ("frontline", "GET", f"/queue?page={BIG}", None, "page"),
    ("frontline", "GET", "/queue?page=0", None, "page"),
    ("frontline", "GET", "/queue?page=abc", None, "page"),
    ("frontline", "GET", f"/queue?site={LONG}", None, "site"),
    ("frontline", "GET", f"/review/next?model={SUPERSCRIPT_TWO}", None, "model"),
    ("frontline", "GET", f"/review/{{rec}}?model={BIG}", None, "model"),
    ("frontline", "POST", "/review/{rec}/decision", {"action": "approve"}, "action"),
    ("frontline", "POST", "/review/{rec}/decision", {"action": "accept", "note": LONG}, "note"),
    ("frontline", "POST", f"/review/{{rec}}/decision?model={SUPERSCRIPT_TWO}", DECISION, "model"),
    ("frontline", "POST", f"/review/{{rec}}/release?site={LONG}", {}, "site"),
    ("frontline", "POST", f"/review/{{rec}}?model={BIG}", {}, "model"),
    ("frontline", "POST", f"/review/next?model={SUPERSCRIPT_TWO}", {}, "model"),
    ("frontline", "POST", f"/review/next?site={LONG}", {}, "site"),
    ("frontline", "POST", "/review/{rec}/undo", {"shown_case": SUPERSCRIPT_TWO}, "shown_case"),
    ("frontline", "POST", "/review/{rec}/undo", {"shown_case": BIG}, "shown_case"),
    ("frontline", "POST", "/review/{rec}/decision", {"action": "accept", "shown": LONG}, "shown"),
    # exceptions: queue, assignment, resolution, dashboard
    ("exception_handler", "GET", f"/exceptions?page={SUPERSCRIPT_TWO}", None, "page"),
    ("exception_handler", "GET", f"/exceptions?page={BIG}", None, "page"),
    ("exception_handler", "GET", f"/exceptions?model={BIG}", None, "model"),
    ("exception_handler", "GET", "/exceptions?status=closed", None, "status"),
    ("exception_handler", "GET", "/exceptions?kind=weird", None, "kind"),
    ("exception_handler", "GET", "/exceptions?severity=extreme", None, "severity"),
    ("exception_handler", "GET", "/exceptions?mine=maybe", None, "mine"),
    ("exception_handler", "POST", "/exceptions/{exc}/assign", {"assignee": BIG}, "assignee"),
    ("exception_handler", "POST", "/exceptions/{exc}/assign", {"assignee": SUPERSCRIPT_TWO}, "assignee"),
    ("exception_handler", "POST", "/exceptions/{exc}/assign", {"assignee": "-3"}, "assignee"),
    ("exception_handler", "POST", "/exceptions/{exc}/resolve", {"final_action": "pay", "note": LONG}, "note"),
    ("exception_handler", "GET", "/exceptions/dashboard?days=0", None, "days"),
    ("exception_handler", "GET", f"/exceptions/dashboard?days={BIG}", None, "days"),
    ("exception_handler", "GET", "/exceptions/dashboard?by=colour", None, "by"),
    ("exception_handler", "GET", "/exceptions/dashboard?model=no%20such%20key", None, "model"),
    ("exception_handler", "GET", f"/exceptions/dashboard.csv?days={SUPERSCRIPT_TWO}", None, "days"),
    # exports: the form, the background job and the streamed API export
    ("model_owner", "GET", f"/exports?backlog_item={BIG}", None, "backlog_item"),
    ("model_owner", "GET", f"/exports?from={YEAR_1}", None, "from"),
    ("model_owner", "POST", "/exports", {**EXPORT, "from": YEAR_1}, "from"),
    ("model_owner", "POST", "/exports", {**EXPORT, "to": YEAR_9999}, "to"),
    ("model_owner", "POST", "/exports", {**EXPORT, "from": "9999-12-31T23:59:59+00:00"}, "from"),
    ("model_owner", "POST", "/exports", {**EXPORT, "from": "2024-02-30"}, "from"),
    ("model_owner", "POST", "/exports", {**EXPORT, "backlog_item": SUPERSCRIPT_TWO}, "backlog_item"),
    ("model_owner", "POST", "/exports", {**EXPORT, "backlog_item": BIG}, "backlog_item"),
    ("model_owner", "POST", "/exports", {**EXPORT, "format": "xlsx"}, "format"),
    ("model_owner", "POST", "/exports", {**EXPORT, "overrides_only": "perhaps"}, "overrides_only"),
    ("model_owner", "POST", "/exports", {"format": "csv"}, "model"),
    ("api:model_owner", "GET", f"{API_EXPORT}&from={YEAR_1}", None, "from"),
    ("api:model_owner", "GET", f"{API_EXPORT}&to={YEAR_9999}", None, "to"),
    ("api:model_owner", "GET", f"{API_EXPORT}&to=9999-12-31T23:59:59Z", None, "to"),
    ("api:model_owner", "GET", f"{API_EXPORT}&backlog_item={BIG}", None, "backlog_item"),
    ("api:model_owner", "GET", f"{API_EXPORT}&backlog_item={SUPERSCRIPT_TWO}", None, "backlog_item"),
    ("api:model_owner", "GET", f"{API_EXPORT}&format=xml", None, "format"),
    ("api:model_owner", "GET", f"{API_EXPORT}&include_reviewer=2", None, "include_reviewer"),
    ("api:model_owner", "GET", f"/api/v1/exports/decisions?model={BIG}", None, "model"),
    # the retraining backlog, pages and API
    ("model_owner", "GET", "/models/claims/backlog?status=done", None, "status"),
    ("model_owner", "GET", "/models/claims/backlog?inactive=2", None, "inactive"),
    ("model_owner", "GET", "/models/claims/backlog?version=v%201", None, "version"),
    ("model_owner", "GET", "/models/claims/backlog?format=xlsx", None, "format"),
    ("model_owner", "GET", "/backlog/{item}?format=pdf", None, "format"),
    ("model_owner", "POST", "/backlog/{item}", {"status": "triaged", "row_version": BIG}, "row_version"),
    ("model_owner", "POST", "/backlog/{item}", {"status": "triaged", "row_version": SUPERSCRIPT_TWO}, "row_version"),
    ("model_owner", "POST", "/backlog/{item}", {"status": "done"}, "status"),
    ("model_owner", "POST", "/models/claims/backlog/refresh?status=done", {}, "status"),
    ("api:model_owner", "GET", "/api/v1/backlog?model=claims&status=done", None, "status"),
    ("api:model_owner", "GET", "/api/v1/backlog?model=claims&include_inactive=maybe", None, "include_inactive"),
    ("api:model_owner", "GET", "/api/v1/backlog", None, "model"),
    ("api:model_owner", "POST", "/api/v1/backlog/refresh", None, "model"),
    # the exceptions and analytics API
    ("api:exception_handler", "GET", "/api/v1/exceptions?limit=null", None, "limit"),
    ("api:exception_handler", "GET", "/api/v1/exceptions?limit=0", None, "limit"),
    ("api:exception_handler", "GET", "/api/v1/exceptions?limit=5000", None, "limit"),
    ("api:exception_handler", "GET", f"/api/v1/exceptions?limit={SUPERSCRIPT_TWO}", None, "limit"),
    ("api:exception_handler", "GET", "/api/v1/exceptions?status=closed", None, "status"),
    ("api:analyst", "GET", f"/api/v1/analytics/exceptions/resolution?days={BIG}", None, "days"),
    ("api:analyst", "GET", "/api/v1/analytics/exceptions/resolution?by=colour", None, "by"),
    ("api:analyst", "GET", f"{OVERRIDES}&from={YEAR_1}", None, "from"),
    ("api:analyst", "GET", f"{OVERRIDES}&to={YEAR_9999}", None, "to"),
    ("api:analyst", "GET", f"{OVERRIDES}&by=colour", None, "by"),
    ("api:analyst", "GET", "/api/v1/analytics/overrides", None, "model"),
    ("api:analyst", "GET", "/api/v1/analytics/challengers", None, "model"),
    ("api:analyst", "GET", f"/api/v1/analytics/challengers?model={LONG}", None, "model"),
    ("api:analyst", "GET", "/api/v1/analytics/challengers?model=claims&version=v9", None, "version"),
    ("api:analyst", "GET", "/api/v1/analytics/challengers?model=claims&version=%00", None, "version"),
    ("api:analyst", "GET", "/api/v1/analytics/challengers?model=claims&by=model_version", None, "by"),
    ("api:analyst", "GET", f"/api/v1/analytics/challengers?model=claims&by=segment.{LONG}", None, "by"),
    ("api:analyst", "GET", "/api/v1/analytics/overrides/compare?model=claims&a=v1", None, "b"),
    ("api:analyst", "GET", "/api/v1/analytics/action-matrix?model=claims&version=v%201", None, "version"),
    ("api:analyst", "GET", "/api/v1/analytics/accuracy?model=claims&by=site", None, "by"),
    ("api:analyst", "GET", "/api/v1/analytics/control-chart?model=claims&from=2024-13-01", None, "from"),
    ("api:analyst", "GET", f"/api/v1/analytics/reviewers?model=claims&to={SUPERSCRIPT_TWO}", None, "to"),
    ("api:analyst", "GET", "/api/v1/alerts", None, "model"),
    ("api:analyst", "GET", "/api/v1/analytics/drift?model=claims", None, "version"),
    (
        "api:analyst",
        "GET",
        f"/api/v1/analytics/drift?model=claims&version=v1&reference_from={YEAR_1}",
        None,
        "reference_from",
    ),
    ("api:analyst", "GET", "/api/v1/analytics/drift?model=claims&version=v1&from=2024-13-01", None, "from"),
    # model owners' pages and forms
    ("model_owner", "GET", f"/models/claims?from={YEAR_1}", None, "from"),
    ("model_owner", "GET", f"/models/claims?to={YEAR_9999}", None, "to"),
    ("model_owner", "GET", "/models/claims?format=csv&table=pie", None, "table"),
    ("model_owner", "GET", "/models/claims/breakdown?by=colour", None, "by"),
    ("model_owner", "GET", "/models/claims/breakdown?version=v%201", None, "version"),
    ("model_owner", "GET", "/models/claims/cases?all=2", None, "all"),
    ("model_owner", "GET", f"/models/claims/cases?cell={LONG}", None, "cell"),
    ("model_owner", "GET", f"/models/claims/cases?after={SUPERSCRIPT_TWO}", None, "after"),
    ("model_owner", "GET", f"/models/claims/cases?after={BIG}", None, "after"),
    ("model_owner", "GET", "/backlog/{item}?after=-1", None, "after"),
    ("model_owner", "GET", "/backlog/{item}?all=perhaps", None, "all"),
    ("model_owner", "GET", "/models/claims/right?by=site", None, "by"),
    ("model_owner", "GET", f"/models/claims/drift?to={YEAR_9999}", None, "to"),
    ("model_owner", "GET", "/models/claims/drift?feature=%3Cscript%3E", None, "feature"),
    ("model_owner", "GET", "/models/claims/drift?version=v%201", None, "version"),
    ("model_owner", "GET", "/models/claims/drift?format=csv&table=pie", None, "table"),
    ("model_owner", "GET", "/models/claims/challengers?by=site", None, "by"),
    ("model_owner", "GET", "/models/claims/challengers?by=segment.a-b", None, "by"),
    ("analyst", "GET", "/models/claims/challengers?version=v%201", None, "version"),
    ("analyst", "GET", f"/models/claims/challengers?version={LONG}", None, "version"),
    ("analyst", "GET", "/models/claims/challengers?decisions=aided", None, "decisions"),
    ("analyst", "GET", "/models/claims/challengers?format=xlsx", None, "format"),
    ("analyst", "GET", "/models/claims/challengers?by=segment.x&by=segment.y", None, "by"),
    ("analyst", "GET", "/models/claims/challengers?version=v9", None, "version"),
    ("model_owner", "POST", "/models/claims/guardrails", {**GUARDRAIL, "version_id": BIG}, "version_id"),
    ("model_owner", "POST", "/models/claims/guardrails", {**GUARDRAIL, "version_id": SUPERSCRIPT_TWO}, "version_id"),
    ("model_owner", "POST", "/models/claims/guardrails", {**GUARDRAIL, "window_size": BIG}, "window_size"),
    ("model_owner", "POST", "/models/claims/guardrails", {**GUARDRAIL, "threshold_pct": "nan"}, "threshold_pct"),
    (
        "model_owner",
        "POST",
        "/models/claims/guardrails",
        {**GUARDRAIL, "kind": "drift", "window_size": "400"},
        "window_size",
    ),
    ("model_owner", "POST", "/models/claims/guardrails", {**GUARDRAIL, "threshold_pct": "inf"}, "threshold_pct"),
    ("model_owner", "POST", "/models/claims/guardrails", {**GUARDRAIL, "kind": "colour"}, "kind"),
    ("model_owner", "POST", f"/models/claims/guardrails?from={YEAR_1}", GUARDRAIL, "from"),
    ("model_owner", "POST", f"/models/claims/versions/{{version}}/resume?to={YEAR_9999}", {}, "to"),
    # impact: test planning, experiments, panels and analyses
    ("analyst", "GET", "/impact/plan?n_total=nan&sd=1", None, "n_total"),
    ("analyst", "GET", "/impact/plan?sd=1e999&n_total=100", None, "sd"),
    ("analyst", "GET", f"/impact/plan?baseline_rate={SUPERSCRIPT_TWO}&n_total=100", None, "baseline_rate"),
    ("analyst", "POST", "/impact/experiments", {**EXPERIMENT, "model_id": BIG}, "model_id"),
    ("analyst", "POST", "/impact/experiments", {**EXPERIMENT, "model_id": SUPERSCRIPT_TWO}, "model_id"),
    ("analyst", "POST", "/impact/experiments", {**EXPERIMENT, "ai_weight": "nan"}, "ai_weight"),
    ("analyst", "POST", "/impact/experiments", {**EXPERIMENT, "kind": "magic"}, "kind"),
    (
        "analyst",
        "POST",
        "/impact/experiments",
        {**EXPERIMENT, "kind": "staggered", "unit": "site", "site": "Leeds", "go_live": YEAR_1},
        "go_live",
    ),
    ("analyst", "POST", "/impact/experiments/{exp}", {"name": "AB", "row_version": BIG}, "row_version"),
    ("analyst", "POST", "/impact/panels", {"experiment_id": BIG, "metric": "decisions"}, "experiment_id"),
    ("analyst", "POST", "/impact/panels", {"experiment_id": SUPERSCRIPT_TWO, "metric": "decisions"}, "experiment_id"),
    ("analyst", "POST", "/impact/panels", {"experiment_id": "{exp}", "metric": "colour"}, "metric"),
    ("analyst", "POST", "/impact/panels/{panel}/analyses", {"draws": BIG}, "draws"),
    ("analyst", "POST", "/impact/panels/{panel}/analyses", {"draws": SUPERSCRIPT_TWO}, "draws"),
    ("analyst", "POST", "/impact/panels/{panel}/analyses", {"method": "magic"}, "method"),
    ("analyst", "GET", f"/impact/panels/{{panel}}?dropped={BIG}", None, "dropped"),
    ("analyst", "GET", "/impact/analyses/{run}.csv?table=pie", None, "table"),
    # the model registry and its settings
    ("admin", "POST", "/admin/versions/{version}/stage", {"stage": "live"}, "stage"),
    ("admin", "POST", "/admin/models/claims/versions", {"version": "v2", "stage": "live"}, "stage"),
    ("admin", "POST", "/admin/models/claims/sla", {"policy.high": "nan"}, "policy.high"),
    ("admin", "POST", "/admin/models/claims/sla", {"policy.high": "1e400"}, "policy.high"),
    ("admin", "POST", "/admin/versions/{version}/rules", {"min_confidence": SUPERSCRIPT_TWO}, "min_confidence"),
    ("admin", "POST", "/admin/versions/{version}/rules", {"audit_sample_pct": "inf"}, "audit_sample_pct"),
    ("admin", "POST", "/admin/models", {"key": "k" * 65, "name": "K", "actions": "a, b"}, "key"),
    (
        "admin",
        "POST",
        "/admin/models",
        {"key": "k2", "name": "K", "actions": "a | A\nb", "reason_codes": "x | X", "segment_labels": "s" * 30_001},
        "segment_labels",
    ),
    ("admin", "POST", "/admin/webhooks", {"url": LONG, "events": "model_version.created"}, "url"),
    ("admin", "POST", "/admin/models/claims/owners", {"owner": "e" * 255}, "owner"),
    ("admin", "POST", "/admin/versions/{version}/stage", {"stage": "paused", "confirm": "perhaps"}, "confirm"),
    ("admin", "POST", "/admin/versions/{version}/stage", {"stage": "paused", "confirm": "1", "from": "x"}, "from"),
    ("admin", "GET", f"/admin/guardrails/{{guardrail}}/remove?next={LONG}", None, "next"),
    ("admin", "POST", "/admin/guardrails/{guardrail}/remove", {"confirm": "perhaps"}, "confirm"),
    # readiness plans: the editor's form, and the promotion's override reason
    ("model_owner", "POST", "/models/claims/versions/v1/readiness/plan", {"use_accuracy": "perhaps"}, "use_accuracy"),
    (
        "model_owner",
        "POST",
        "/models/claims/versions/v1/readiness/plan",
        {"threshold_accuracy": "nan"},
        "threshold_accuracy",
    ),
    ("model_owner", "POST", "/models/claims/versions/v1/readiness/plan", {"min_n_decisions": BIG}, "min_n_decisions"),
    ("model_owner", "POST", "/models/claims/versions/v1/readiness/plan", {"direction_drift": "up"}, "direction_drift"),
    ("model_owner", "POST", "/models/claims/versions/v1/readiness/plan", {"experiment_id": BIG}, "experiment_id"),
    (
        "model_owner",
        "POST",
        "/models/claims/versions/v1/readiness/plan",
        {"experiment_metric": "x"},
        "experiment_metric",
    ),
    ("model_owner", "POST", "/models/claims/versions/v1/readiness/plan", {"reason": LONG}, "reason"),
    (
        "admin",
        "POST",
        "/admin/versions/{version}/stage",
        {"stage": "paused", "override_reason": LONG},
        "override_reason",
    ),
    # people and passwords
    ("admin", "POST", "/admin/users/{user}/role", {"role": "wizard"}, "role"),
    ("admin", "POST", "/admin/users/{user}/role", {}, "role"),
    ("admin", "POST", "/admin/users/{user}/role", {"role": "admin\u0000"}, "role"),
    ("frontline", "POST", "/account/password", {"current_password": "x", "new_password": "n" * 513}, "new_password"),
    (
        "frontline",
        "POST",
        "/account/password",
        {"current_password": "c" * 513, "new_password": "x"},
        "current_password",
    ),
    # signing in
    ("anonymous", "GET", f"/login?next={LONG}", None, "next"),
    ("anonymous", "POST", "/login", {"email": "e" * 321, "password": "x"}, "email"),
]


def _case_id(case: tuple[str, str, str, dict[str, str] | None, str]) -> str:
    role, method, path, _, field = case
    return f"{method} {path.split('?')[0]} {field} ({role})"


def fill(text: str, ids: dict[str, int]) -> str:
    """Put the world's row ids into a path or a form value."""
    return text.format(**ids) if "{" in text else text


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_parameter_is_refused_by_name_and_stores_nothing(world, fingerprint, case):
    role, method, path, form, field = case
    client = world["clients"][role]
    url = fill(path, world["ids"])
    data = {k: fill(v, world["ids"]) for k, v in (form or {}).items()}
    client.get("/api/v1/models" if role.startswith("api:") else "/login")  # any per-request bookkeeping first
    before = fingerprint()
    response = client.open(url, method=method, data=data if method != "GET" else None)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert field in named_fields(response), response.text[:2000]
    assert fingerprint() == before


def test_every_parameter_is_probed(app):
    """Every route that reads a query string or a form is probed above (the rest read nothing)."""
    probed = set()
    adapter = app.url_map.bind("localhost")
    for _, method, path, _, _ in CASES:
        endpoint, _ = adapter.match(
            fill(path, dict.fromkeys(ROW_NAMES, 1)).split("?")[0],
            method=method,
        )
        probed.add(endpoint)
    reads_nothing = {
        "static",
        "vendor.vendor_file",
        "healthz",
        "readyz",
        "metrics",
        "auth.home",
        "auth.logout",
        "admin.models",
        "admin.settings",
        "admin.webhooks_page",
        "admin.toggle_webhook",
        "admin.test_webhook",
        "backlog.refresh_status",
        "decision_exceptions.detail",
        "exports.job",
        "exports.download",
        "impact.index",
        "impact.experiment",
        "impact.change_status",
        "impact.analyse_experiment",
        "impact.delete_panel",
        "impact.panel_csv",
        "impact.run",
        "impact.upload_panel",  # a multipart upload: its file is checked by impact.upload_panel
        "overrides.remove_guardrail",
        "overrides.acknowledge",
        "review.renew",
        "auth.password",
        "users.index",
        "users.sign_out",
        "users.deactivate",
        "users.reactivate",
        "models.index",
        "cases.detail",
        "readiness.overview",
    }
    api = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")}
    json_bodies = {e for e in api if e not in probed}  # bodies are the JSON schemas' business
    everything = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert everything - probed - reads_nothing - json_bodies == set()
    assert {"api.export_decisions", "api.list_exceptions", "api.list_backlog", "api.overrides_by"} <= probed


@pytest.mark.parametrize("path", ["/api/v1/recommendations", "/queue", "/exceptions/1/resolve"])
def test_method_not_allowed_says_what_is(world, path):
    response = world["clients"]["api:admin" if path.startswith("/api") else "exception_handler"].delete(path)
    assert response.status_code == 405
    assert response.headers["Allow"]
    assert "DELETE" not in response.headers["Allow"]
