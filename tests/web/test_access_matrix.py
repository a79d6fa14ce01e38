"""Every route against every role, and anonymous: the server enforces who may do what.

The table below is the access policy written out by hand. A route added without an entry
fails the test, so nobody ships a page without deciding who may see it.
"""

from __future__ import annotations

from flask import Flask

from feedback.models import (
    ROLES,
)
from tests.helpers import QUERY, url_for_rule

F, X, M, A, D = "frontline", "exception_handler", "model_owner", "analyst", "admin"
ANY = frozenset(ROLES)
PUBLIC = None  # no sign-in needed

# endpoint -> roles allowed (PUBLIC for everyone, anonymous included)
POLICY: dict[str, frozenset[str] | None] = {
    # sign-in, health and front-end files
    "auth.login": PUBLIC,
    "healthz": PUBLIC,
    "readyz": PUBLIC,
    "vendor.vendor_file": PUBLIC,
    "api.openapi": PUBLIC,
    "auth.home": ANY,
    "auth.logout": ANY,
    "auth.password": ANY,
    "auth.change_password": ANY,
    # frontline review
    "queue.index": frozenset({F, X, D}),
    "review.case": frozenset({F, X, D}),
    "review.next_case": frozenset({F, X, D}),
    "review.claim": frozenset({F, X, D}),
    "review.claim_next": frozenset({F, X, D}),
    "review.renew": frozenset({F, X, D}),
    "review.decide": frozenset({F, X, D}),
    "review.release": frozenset({F, X, D}),
    "review.undo": frozenset({F, X, D}),
    "api.decide": frozenset({F, X, D}),
    "api.get_recommendation": ANY,
    # exceptions
    "decision_exceptions.index": frozenset({X, D}),
    "decision_exceptions.detail": frozenset({X, D}),
    "decision_exceptions.assign": frozenset({X, D}),
    "decision_exceptions.resolve": frozenset({X, D}),
    "api.list_exceptions": frozenset({X, D}),
    "api.resolve": frozenset({X, D}),
    "decision_exceptions.dashboard": frozenset({X, M, A, D}),
    "decision_exceptions.dashboard_csv": frozenset({X, M, A, D}),
    "api.exception_resolution": frozenset({X, M, A, D}),
    # models and their settings
    "admin.models": frozenset({M, A, D}),
    "admin.settings": frozenset({M, A, D}),
    "admin.register_model": frozenset({M, D}),
    "admin.add_version": frozenset({M, D}),
    "admin.set_stage": frozenset({M, D}),
    "admin.remove_guardrail": frozenset({M, D}),  # GET: what removing it does; POST: remove it, once confirmed
    "admin.set_owners": frozenset({D}),
    "admin.save_sla": frozenset({M, D}),
    "admin.save_rules": frozenset({M, D}),
    "api.list_models": ANY,
    "api.create_model": frozenset({M, D}),
    "api.create_version": frozenset({M, D}),
    "api.set_model_owners": frozenset({D}),
    "api.ingest": frozenset({M, D}),
    "api.report_outcomes": frozenset({M, D}),
    "api.add_challengers": frozenset({M, D}),
    "api.challenger_analytics": frozenset({M, A, D}),
    "challengers.compare": frozenset({M, A, D}),
    # override analytics and guardrails
    "models.index": frozenset({M, A, D}),
    "cases.detail": frozenset({M, A, D}),
    "overrides.overview": frozenset({M, A, D}),
    "overrides.breakdown": frozenset({M, A, D}),
    "overrides.cases": frozenset({M, A, D}),
    "overrides.right": frozenset({M, A, D}),
    "overrides.acknowledge": frozenset({M, D}),
    "overrides.add_guardrail": frozenset({M, D}),
    "overrides.remove_guardrail": frozenset({M, D}),
    "overrides.resume": frozenset({M, D}),
    "api.overrides_by": frozenset({M, A, D}),
    "api.compare_versions": frozenset({M, A, D}),
    "api.action_matrix": frozenset({M, A, D}),
    "api.accuracy_by": frozenset({M, A, D}),
    "api.control_chart": frozenset({M, A, D}),
    "api.reviewer_rows": frozenset({M, A, D}),
    "api.alerts": frozenset({M, A, D}),
    # impact
    "impact.index": frozenset({M, A, D}),
    "impact.plan": frozenset({M, A, D}),
    "impact.experiment": frozenset({M, A, D}),
    "impact.panel": frozenset({M, A, D}),
    "impact.panel_csv": frozenset({M, A, D}),
    "impact.run": frozenset({M, A, D}),
    "impact.run_csv": frozenset({M, A, D}),
    "impact.create_experiment": frozenset({A, D}),
    "impact.update_experiment": frozenset({A, D}),
    "impact.change_status": frozenset({A, D}),
    "impact.analyse_experiment": frozenset({A, D}),
    "impact.build_panel": frozenset({A, D}),
    "impact.upload_panel": frozenset({A, D}),
    "impact.analyse_panel": frozenset({A, D}),
    "impact.delete_panel": frozenset({A, D}),
    "api.list_experiments": frozenset({M, A, D}),
    "api.get_experiment": frozenset({M, A, D}),
    "api.get_analysis": frozenset({M, A, D}),
    "api.create_experiment": frozenset({A, D}),
    "api.change_experiment": frozenset({A, D}),
    "api.analyse_experiment": frozenset({A, D}),
    "api.analyse_panel": frozenset({A, D}),
    # retraining backlog and exports
    "backlog.index": frozenset({M, A, D}),
    "backlog.detail": frozenset({M, A, D}),
    "backlog.update": frozenset({M, D}),
    "backlog.refresh": frozenset({M, D}),
    "backlog.refresh_status": frozenset({M, A, D}),
    "api.list_backlog": frozenset({M, A, D}),
    "api.patch_backlog": frozenset({M, D}),
    "api.refresh_backlog": frozenset({M, D}),
    "exports.index": frozenset({M, A, D}),
    "exports.create": frozenset({M, A, D}),
    "exports.job": frozenset({M, A, D}),
    "exports.download": frozenset({M, A, D}),
    "api.export_decisions": frozenset({M, A, D}),
    # administration
    "admin.webhooks_page": frozenset({D}),
    "admin.create_webhook": frozenset({D}),
    "admin.toggle_webhook": frozenset({D}),
    "admin.test_webhook": frozenset({D}),
    "users.index": frozenset({D}),
    "users.set_role": frozenset({D}),
    "users.sign_out": frozenset({D}),
    "users.deactivate": frozenset({D}),
    "users.reactivate": frozenset({D}),
    "metrics": frozenset({D}),  # an admin's API token (or the metrics token); never a session
}

# What an allowed GET answers when it is not a plain 200.
GET_ANSWER = {
    "auth.home": {302},
    "review.next_case": {200, 302},  # the next case, or "nothing to review" once another role took it
    "impact.run_csv": {409},  # the run is still queued
    "backlog.refresh_status": {302},  # without htmx, the list the refresh's progress is shown on
}
# Only the person who asked for an export sees it; for other allowed roles it does not exist.
OWN_EXPORT = {"exports.job", "exports.download"}


def test_every_route_has_a_policy(app: Flask):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()} - {"static"}
    assert endpoints - POLICY.keys() == set(), "add these routes to POLICY"
    assert POLICY.keys() - endpoints == set(), "these routes no longer exist"


def test_every_route_against_every_role(app: Flask, world):
    rules = sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint != "static"),
        # Reads first, then writes; replacing the model's owners (with nobody) and signing out last of all.
        key=lambda r: ("GET" not in r.methods, r.endpoint == "auth.logout", r.rule.endswith("/owners"), r.rule),
    )
    wrong = []
    for rule in rules:
        allowed = POLICY[rule.endpoint]
        ids = {**world["ids"], "change": "enable" if "enable" in rule.rule else "start"}
        url = url_for_rule(rule.rule, ids) + QUERY.get(rule.endpoint, "")
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        is_api = rule.rule.startswith("/api/") or rule.endpoint == "metrics"
        for role in [None, *ROLES]:
            client = world["clients"][role]
            headers = world["tokens"][role] if is_api and role else {}
            # API writes get a JSON body, so a refusal cannot hide behind a 415.
            body = {"json": {}} if is_api and method != "GET" else {}
            with client.open(url, method=method, headers=headers, **body) as response:
                status = response.status_code
            if allowed is PUBLIC:
                ok = status == 200 if method == "GET" else status < 500
            elif role is None:
                ok = status == (401 if is_api else 302)
            elif role not in allowed:
                ok = status == (401 if rule.endpoint == "metrics" else 403)
            elif method == "GET":
                expected = GET_ANSWER.get(rule.endpoint, {200})
                if rule.endpoint in OWN_EXPORT:
                    expected = {200 if rule.endpoint == "exports.job" and role == D else 404}
                ok = status in expected
            else:
                ok = status not in (401, 403) and status < 500
            if not ok:
                wrong.append(f"{method} {url} as {role or 'anonymous'}: {status}")
    assert wrong == [], "\n".join(wrong)
