"""Countersign web application factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from feedback import formatting, json_input, permissions, wording
from feedback.db import sqlite_write_intent
from feedback.impact import assignment as arms
from feedback.schemas import MAX_ID
from webapp import checkpointing, config, observability
from webapp.extensions import close_analytics_session, csrf, db
from webapp.htmx import add_vary

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)


class BoundedInt(IntegerConverter):
    """`<int:...>` limited to the ids a database column can hold."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:  # werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class FiniteJSONProvider(DefaultJSONProvider):
    """JSON answers are always JSON: a NaN or infinity read from an old row is answered as null."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Refuse NaN while encoding (free), and only then encode a copy with it nulled."""
        kwargs["allow_nan"] = False
        try:
            return super().dumps(obj, **kwargs)
        except ValueError:
            return super().dumps(json_input.finite_or_none(obj), **kwargs)


def _configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Settings: defaults, then the environment (COUNTERSIGN_*), then the caller's; and the engines."""
    app.config.from_mapping(config.defaults())
    for name in ("DATABASE_URL", "ANALYTICS_DATABASE_URL", "SECRET_KEY"):
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    app.config.from_prefixed_env("COUNTERSIGN")
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.instance_secret_key(app.instance_path)
    permissions.configure_pseudonyms(app.config["SECRET_KEY"])
    # JSON columns are written with NaN and infinity refused: no reader of the stored JSON accepts them.
    options = {"pool_pre_ping": True, "json_serializer": json_input.dumps}
    engines = {"default": {"url": config.database_url(app.config["DATABASE_URL"]), **options}}
    if app.config.get("ANALYTICS_DATABASE_URL"):
        # A read replica for the analytics pages and exports (see analytics_session).
        engines["analytics"] = {"url": config.database_url(app.config["ANALYTICS_DATABASE_URL"]), **options}
    app.config["SQLALCHEMY_ENGINES"] = engines


def _register_blueprints(app: Flask) -> None:
    """The pages' blueprints, and the API's (CSRF-exempt: it takes bearer tokens, never cookies)."""
    from webapp.api import bp as api_bp

    # admin_settings, admin_webhooks and impact_analyses are imported for their routes, which join
    # admin.bp and impact.bp.
    from webapp.views import (  # noqa: F401
        admin,
        admin_settings,
        admin_webhooks,
        auth,
        backlog,
        cases,
        challengers,
        decision_exceptions,
        drift,
        exports,
        impact,
        impact_analyses,
        models,
        overrides,
        queue,
        readiness,
        review,
        users,
        vendor,
    )

    for blueprint in (
        auth.bp,
        queue.bp,
        review.bp,
        decision_exceptions.bp,
        models.bp,
        overrides.bp,
        drift.bp,
        admin.bp,
        impact.bp,
        backlog.bp,
        readiness.bp,
        challengers.bp,
        cases.bp,
        exports.bp,
        users.bp,
        vendor.bp,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the Countersign app."""
    app = Flask(__name__, instance_relative_config=True, template_folder="../templates", static_folder="../static")
    app.json = FiniteJSONProvider(app)
    _configure(app, test_config)

    # An id past the largest INTEGER names nothing: 404 at routing, never an overflow in the driver.
    app.url_map.converters["int"] = BoundedInt
    db.init_app(app)
    # The app has no async sessions, and Flask runs an async teardown through asgiref, which
    # starts a thread for every request: 1-3 ms of every response, /healthz's included.
    app.teardown_appcontext_funcs[:] = [
        f for f in app.teardown_appcontext_funcs if getattr(f, "__name__", "") != "_close_async_sessions"
    ]
    csrf.init_app(app)
    observability.init_app(app)
    checkpointing.init_app(app)
    writer = checkpointing.checkpointer_of(app)
    if app.config["TRUSTED_PROXIES"]:
        # Behind a load balancer: take the client address and scheme from its X-Forwarded-* headers.
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    _register_blueprints(app)

    from feedback.webhooks import services as webhooks
    from webapp import jobs

    webhooks.BACKOFF_SECONDS = float(app.config.get("WEBHOOK_BACKOFF_SECONDS", 2.0))
    webhooks.set_runner(lambda: jobs.start_webhook_delivery(app))

    from webapp.errors import register_error_handlers

    register_error_handlers(app)

    from webapp.cli import register_commands

    register_commands(app)

    @app.before_request
    def _before() -> None:
        writes = request.method not in ("GET", "HEAD", "OPTIONS")  # a GET never writes
        sqlite_write_intent.set(writes)
        g.user = None
        arms.remember_running_experiments(db.session)
        if not request.path.startswith(("/api/", "/static/")):
            from webapp.auth import load_session_user

            load_session_user()

    app.teardown_appcontext(close_analytics_session)

    # Numbers for reading and codes in words (feedback.formatting, feedback.wording).
    app.jinja_env.filters.update(formatting.FILTERS)
    app.jinja_env.filters["kind_label"] = wording.kind_label
    app.jinja_env.filters["humanise"] = wording.humanise
    app.jinja_env.filters["with_article"] = wording.with_article
    app.jinja_env.filters["upper_first"] = wording.upper_first
    app.jinja_env.globals["wording"] = wording
    app.jinja_env.globals["fmt"] = formatting

    @app.template_global()
    def person_name(person: Any) -> str | None:
        """A person as the signed-in user may see them: their name, or their pseudonym."""
        return permissions.person_name(g.user, person)

    @app.template_global()
    def may(action: str) -> bool:
        """Whether the signed-in user's role may take an action of the permissions matrix, e.g. may('CHANGE_MODEL')."""
        return g.user is not None and permissions.allows(g.user.role, permissions.Action[action])

    @app.template_global()
    def menu() -> list[tuple[str, str]]:
        """The signed-in user's top menu: (url, label) of the pages their role may open."""
        from webapp import navigation

        return navigation.menu(g.user.role) if g.user else []

    @app.teardown_request
    def _after(_exc: BaseException | None) -> None:
        wrote = sqlite_write_intent.get()
        sqlite_write_intent.set(False)
        if wrote:
            # Anchor the audit chain outside the database now and then (docs/security.md).
            writer.after_write(db.engine)

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return add_vary(response)

    return app
