"""The `countersign` console command, built on Flask's CLI."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask

from feedback import audit, backup, checkpoints, migrate
from feedback.accounts import services as accounts
from feedback.accounts import tokens
from feedback.audit import Actor
from feedback.errors import FeedbackError
from feedback.models import ROLES
from webapp import checkpointing, jobs
from webapp.extensions import db

CLI_ACTOR = Actor(None, "cli")


GUNICORN_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def _fail(exc: FeedbackError) -> None:
    """Print a domain error with its fields and exit non-zero."""
    detail = "".join(f"\n  {k}: {v}" for k, v in exc.fields.items())
    raise click.ClickException(f"{exc.message}{detail}")


def _raw_url() -> str:
    """The database URL with its password, for the backup tools (never printed)."""
    return db.engine.url.render_as_string(hide_password=False)


def register_commands(app: Flask) -> None:
    """Attach the countersign commands to the app's CLI."""
    _database_commands(app)
    _people_commands(app)
    _token_commands(app)
    _record_commands(app)
    _operations_commands(app)


def _database_commands(app: Flask) -> None:
    """Schema migrations, backups and restores."""

    @app.cli.group("db")
    def db_group() -> None:
        """Schema migrations."""

    @db_group.command("upgrade")
    @click.argument("revision", default="head")
    def db_upgrade(revision: str) -> None:
        """Apply migrations up to REVISION (default: head)."""
        migrate.upgrade(db.engine, revision)
        click.echo(f"database at {revision}: {db.engine.url.render_as_string(hide_password=True)}")

    @db_group.command("backup")
    @click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
    def db_backup(target: Path) -> None:
        """Write a consistent copy of the database to TARGET while the app keeps serving."""
        try:
            backup.backup(_raw_url(), target)
        except backup.BackupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"backed up {db.engine.url.render_as_string(hide_password=True)} to {target}")

    @db_group.command("restore")
    @click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="Do not ask: replace the database.")
    def db_restore(source: Path, yes: bool) -> None:
        """Replace the database with the backup in SOURCE (stop the app first), then verify the audit chain."""
        shown = db.engine.url.render_as_string(hide_password=True)
        if not yes:
            click.confirm(f"Replace everything in {shown} with {source}?", abort=True)
        db.engine.dispose()  # our own pooled connections must not hold the old tables
        try:
            report = backup.restore(_raw_url(), source)
        except backup.BackupError as exc:
            raise click.ClickException(str(exc)) from None
        if not report.ok:
            for problem in report.problems:
                click.echo(f"FAIL: {problem}", err=True)
            sys.exit(1)
        click.echo(f"restored {source} into {shown}; audit chain intact: {report.checked} events verified")
        writer = checkpointing.checkpointer_of(app)
        if writer.path is not None and writer.path.exists():
            # The restore rewound the chain on purpose: later checkpoints describe events that are gone.
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = writer.path.with_name(f"{writer.path.name}.before-restore-{stamp}")
            writer.path.rename(kept)
            writer.write(db.engine, force=True)
            click.echo(f"earlier audit checkpoints moved to {kept}; a new checkpoint anchors the restored chain")

    @db_group.command("downgrade")
    @click.argument("revision")
    def db_downgrade(revision: str) -> None:
        """Revert migrations down to REVISION."""
        migrate.downgrade(db.engine, revision)


def _people_commands(app: Flask) -> None:
    """People: accounts, roles, passwords and sessions."""

    @app.cli.group("user")
    def user_group() -> None:
        """People who sign in."""

    @user_group.command("create")
    @click.argument("email")
    @click.option("--role", type=click.Choice(ROLES), required=True)
    @click.option("--name", default="")
    @click.password_option("--password", help="Prompted for (twice) when not given.")
    def user_create(email: str, role: str, name: str, password: str) -> None:
        """Create a user."""
        try:
            user = accounts.create_user(db.session, CLI_ACTOR, email=email, role=role, password=password, name=name)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(f"created {user.email} ({user.role})")

    @user_group.command("set-role")
    @click.argument("email")
    @click.argument("role", type=click.Choice(ROLES))
    def user_set_role(email: str, role: str) -> None:
        """Give a user another role (their sessions end)."""
        try:
            user = accounts.set_role(db.session, CLI_ACTOR, email=email, role=role)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(f"{user.email} is now {user.role}; their sessions ended")

    @user_group.command("set-password")
    @click.argument("email")
    @click.password_option("--password", help="Prompted for (twice) when not given.")
    def user_set_password(email: str, password: str) -> None:
        """Reset a user's password (their sessions end)."""
        try:
            user = accounts.set_password(db.session, CLI_ACTOR, email=email, password=password)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(f"password of {user.email} changed; their sessions ended")

    @user_group.command("sign-out")
    @click.argument("email")
    def user_sign_out(email: str) -> None:
        """End every session of a user now (password and API tokens unchanged)."""
        try:
            user = accounts.end_user_sessions(db.session, CLI_ACTOR, email=email)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(f"{user.email} was signed out everywhere")

    @user_group.command("deactivate")
    @click.argument("email")
    def user_deactivate(email: str) -> None:
        """Stop a user signing in: sessions end and API tokens are revoked."""
        try:
            user = accounts.deactivate_user(db.session, CLI_ACTOR, email=email)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(f"deactivated {user.email}; their sessions ended and their API tokens are revoked")

    @user_group.command("reactivate")
    @click.argument("email")
    def user_reactivate(email: str) -> None:
        """Let a deactivated user sign in again (old API tokens stay revoked)."""
        try:
            user = accounts.reactivate_user(db.session, CLI_ACTOR, email=email)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(f"reactivated {user.email}")


def _token_commands(app: Flask) -> None:
    """API tokens for model services and other tools."""

    @app.cli.group("token")
    def token_group() -> None:
        """API tokens."""

    @token_group.command("create")
    @click.argument("email")
    @click.option("--name", default="")
    def token_create(email: str, name: str) -> None:
        """Create an API token for a user and print it once (only its hash is kept)."""
        try:
            token = tokens.create_token(db.session, CLI_ACTOR, email=email, name=name)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(token)

    @token_group.command("revoke")
    @click.argument("token_id", type=int)
    def token_revoke(token_id: int) -> None:
        """Revoke an API token by id."""
        try:
            tokens.revoke_token(db.session, CLI_ACTOR, token_id=token_id)
        except FeedbackError as exc:
            _fail(exc)
        click.echo(f"revoked token {token_id}")


def _record_commands(app: Flask) -> None:
    """The demo data and the audit trail."""

    @app.cli.command("seed-demo")
    @click.option("--days", default=90, show_default=True)
    @click.option("--per-day", default=420, show_default=True, help="Decided cases per day of history.")
    @click.option("--seed", "rng_seed", default=7, show_default=True)
    @click.option(
        "--mine-now/--mine-in-worker",
        default=True,
        show_default=True,
        help="Mine the retraining backlog before returning, or queue it for `countersign worker` (make demo does).",
    )
    def seed_demo(days: int, per_day: int, rng_seed: int, mine_now: bool) -> None:
        """Fill the database with a realistic claims-triage scenario (skipped if already seeded)."""
        from demo.catalog import DEMO_PASSWORD
        from demo.seed import seed

        queue = None if mine_now else jobs.submit_backlog_refresh
        created = seed(
            db.session, days=days, per_day=per_day, rng_seed=rng_seed, progress=click.echo, queue_refresh=queue
        )
        if not created:
            click.echo("demo data already present; nothing changed")
        click.echo(f"\nSign in with any of these (password: {DEMO_PASSWORD}):")
        for email, role in (
            ("reviewer01@countersign.test", "frontline"),
            ("handler@countersign.test", "exception_handler"),
            ("owner@countersign.test", "model_owner"),
            ("analyst@countersign.test", "analyst"),
            ("admin@countersign.test", "admin"),
        ):
            click.echo(f"  {email:<32} {role}")

    @app.cli.group("audit")
    def audit_group() -> None:
        """The tamper-evident audit trail."""

    @audit_group.command("verify")
    @click.option(
        "--checkpoints",
        "files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A file of signed checkpoints, or a JSON log holding them (repeatable). "
        "Default: this instance's AUDIT_CHECKPOINT_FILE.",
    )
    def audit_verify(files: tuple[Path, ...]) -> None:
        """Check every link of the audit chain against the signed checkpoints; exit 1 if anything was altered."""
        writer = checkpointing.checkpointer_of(app)
        paths = list(files) or ([writer.path] if writer.path is not None and writer.path.exists() else [])
        anchors = checkpoints.read(writer.key(), paths) if paths else checkpoints.Anchors()
        report = audit.verify_chain(db.session, anchors=anchors.by_seq)
        problems = anchors.problems + report.problems
        if problems:
            for problem in problems:
                click.echo(f"FAIL: {problem}", err=True)
            sys.exit(1)
        click.echo(f"audit chain intact: {report.checked} events verified")
        latest = anchors.latest
        if latest is None:
            click.echo(
                "WARNING: no signed checkpoints were given, so a rewrite that recomputed the hashes "
                "(or removed the last events) would pass; see docs/security.md",
                err=True,
            )
        else:
            click.echo(
                f"matches {report.anchored} signed checkpoint(s), the latest at event #{latest.seq} ({latest.at})"
            )

    @audit_group.command("checkpoint")
    def audit_checkpoint() -> None:
        """Sign the chain's head now and append it to AUDIT_CHECKPOINT_FILE (run from cron while the app is idle)."""
        writer = checkpointing.checkpointer_of(app)
        if writer.path is None:
            raise click.ClickException("AUDIT_CHECKPOINT_FILE is empty: checkpoints are turned off")
        written = writer.write(db.engine, force=True)
        if written is not None:
            click.echo(f"checkpoint of event #{written.seq} appended to {writer.path}")


def _operations_commands(app: Flask) -> None:
    """Guardrails, the backlog, webhooks, the background worker and the web server."""

    @app.cli.group("guardrails")
    def guardrails_group() -> None:
        """Guardrails on model versions."""

    @guardrails_group.command("check")
    def guardrails_check() -> None:
        """Evaluate every enabled guardrail now; print new alerts (exit 0 either way)."""
        from feedback.overrides import guardrails

        version_ids = [g.model_version_id for g in guardrails.enabled(db.session)]
        raised = guardrails.evaluate(db.session, version_ids, force=True)
        for alert in raised:
            click.echo(f"ALERT: {alert.message}")
        click.echo(f"checked guardrails on {len(set(version_ids))} version(s); {len(raised)} new alert(s)")

    @app.cli.group("backlog")
    def backlog_group() -> None:
        """The retraining backlog."""

    @backlog_group.command("refresh")
    @click.argument("model_key")
    def backlog_refresh(model_key: str) -> None:
        """Mine a model's decisions and update its backlog (safe to run from cron)."""
        from feedback.audit import Actor
        from feedback.backlog import services as backlog

        try:
            summary = backlog.refresh(db.session, Actor(None, "cli"), model_key=model_key)
        except FeedbackError as exc:
            _fail(exc)
            return
        click.echo(f"{summary.created} new, {summary.updated} updated, {summary.retired} no longer credible")

    @app.cli.group("webhooks")
    def webhooks_group() -> None:
        """Outgoing webhooks."""

    @webhooks_group.command("deliver")
    def webhooks_deliver() -> None:
        """Send every webhook delivery that is due now (retries included)."""
        from feedback.webhooks import services as webhooks

        click.echo(f"attempted {webhooks.deliver_due(db.session)} delivery(ies)")

    @app.cli.command("worker")
    @click.option("--threads", default=2, show_default=True, help="jobs run at once by this worker")
    def worker_command(threads: int) -> None:
        """Run background jobs (analyses, exports, backlog refreshes, webhooks, guardrail sweeps) until stopped."""
        from webapp import worker

        worker.run(app, threads)

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8000, show_default=True)
    @click.option("--workers", type=int, help="gunicorn workers  [default: 2 x cores + 1, at most 8]")
    @click.option("--threads", type=int, help="threads per worker  [default: 4]")
    def serve(host: str, port: int, workers: int | None, threads: int | None) -> None:
        """Serve the app with gunicorn (settings in gunicorn.conf.py)."""
        args = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", f"{host}:{port}"]
        if workers:
            args += ["--workers", str(workers)]
        if threads:
            args += ["--threads", str(threads)]
        os.execv(sys.executable, args)
