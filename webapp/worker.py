"""The background worker: Huey runs analyses, exports, backlog refreshes, webhook deliveries and sweeps.

Two modes (see docs/architecture.md):
- queue (production, `make demo`): the web process only enqueues; `countersign worker` processes
  consume. The queue lives in the database: PostgreSQL (schema `countersign_queue`, claimed with
  FOR UPDATE SKIP LOCKED, so any number of worker hosts share it) or, on SQLite, a file next to
  the database.
- in-process (JOBS_IN_PROCESS: the tests, and `flask run` in development; never gunicorn): one
  Huey consumer of threads in this process, on memory storage, started on the first job. Its
  messages carry the key of the app that queued them (a test process makes many apps).

Every job's state is its database row (feedback/background.py): that is what survives a SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
from flask import Flask, current_app
from huey import Huey, MemoryHuey, PostgresHuey, SqliteHuey, crontab
from huey.api import TaskWrapper
from huey.consumer import Consumer
from huey.exceptions import TaskLockedException
from sqlalchemy import make_url

from feedback import background
from feedback.backlog import services as backlog
from feedback.db import sqlite_write_intent, utcnow
from feedback.exports import services as exports
from feedback.impact import runs as impact_runs
from feedback.webhooks import services as webhooks

log = logging.getLogger(__name__)

QUEUE_SCHEMA = "countersign_queue"
LONGEST_WAIT = 60.0  # a delivery due later than this is found by the worker's minute sweep
_apps: weakref.WeakValueDictionary[str, Flask] = weakref.WeakValueDictionary()
_queues: dict[str, tuple[Huey, dict[str, TaskWrapper]]] = {}
_lock = threading.Lock()


def in_process(app: Flask) -> bool:
    """Whether this app runs its jobs on threads of its own (tests, development)."""
    return bool(app.config.get("JOBS_IN_PROCESS"))


def queue_url(app: Flask) -> str:
    """Where the queue lives: QUEUE_URL, else next to the application database."""
    if app.config.get("QUEUE_URL"):
        return str(app.config["QUEUE_URL"])
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        # Relative like the database's own path: under instance/ (as Flask-SQLAlchemy-Lite does).
        path = Path(app.instance_path) / (url.database or "countersign.sqlite")
        return f"sqlite:///{path.with_name(path.stem + '-queue.sqlite')}"
    return url.render_as_string(hide_password=False)


def _database_queue(url: str) -> Huey:
    """Huey on the database: PostgreSQL in a schema of its own (Alembic's tables stay apart), or a SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SqliteHuey("countersign", results=False, filename=parsed.database, timeout=10)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {QUEUE_SCHEMA}")
    return PostgresHuey("countersign", results=False, dsn=dsn, options=f"-c search_path={QUEUE_SCHEMA}")


class _ThreadConsumer(Consumer):
    """A consumer inside another program (the in-process mode): that program keeps its signal handlers."""

    def _set_signal_handlers(self) -> None:
        return


def _register(huey: Huey) -> dict[str, TaskWrapper]:
    """Attach our tasks to a Huey instance (one per queue: the database queue or the in-process one)."""
    tasks = {
        "run_job": huey.task(name="run_job")(_run_job),
        "deliver_webhooks": huey.task(name="deliver_webhooks")(_deliver_webhooks),
    }
    # Periodic tasks run in `countersign worker` only; every host runs them, so each is idempotent
    # and the guardrail sweep holds a lock shared through the queue's storage.
    huey.periodic_task(crontab(minute="*"), name="reclaim_stale")(_reclaim_stale)
    huey.periodic_task(crontab(minute="*"), name="webhook_sweep")(_deliver_webhooks)
    huey.periodic_task(crontab(minute="*/5"), name="guardrail_sweep")(_sweep_guardrails)
    return tasks


def queue_of(app: Flask) -> tuple[Huey, dict[str, TaskWrapper]]:
    """The Huey instance this app's jobs go to, with its tasks (created once per process and queue)."""
    key = "in-process" if in_process(app) else queue_url(app)
    with _lock:
        if key not in _queues:
            huey = MemoryHuey("countersign", results=False) if key == "in-process" else _database_queue(key)
            _queues[key] = (huey, _register(huey))
            if key == "in-process":
                _ThreadConsumer(huey, workers=2, periodic=False, initial_delay=0.05, max_delay=0.5).start()
    return _queues[key]


def _key(app: Flask) -> str:
    """The key a message carries to find its app: only the in-process queue serves several apps."""
    if not in_process(app):
        return ""
    key = str(id(app))
    _apps[key] = app
    return key


def _app(key: str) -> Flask | None:
    """The app a message belongs to (None once an in-process app has ended: its jobs are dropped)."""
    return _apps.get(key)


# In-process mode: how many tasks are running now, so an app can wait for its jobs before it ends.
_running = 0
_running_changed = threading.Condition()


@contextlib.contextmanager
def _running_task() -> Iterator[None]:
    global _running
    with _running_changed:
        _running += 1
    try:
        yield
    finally:
        with _running_changed:
            _running -= 1
            _running_changed.notify_all()


def drain(app: Flask, timeout: float = 30.0) -> bool:
    """In-process mode: wait until no job is queued or running, then forget the app (False on timeout).

    A test (or `flask run` shutting down) calls it before disposing of the app's engine, so no job
    outlives the app and the connections it opened; messages for the app that come later (a retry
    scheduled with a delay) are dropped.
    """
    queue = _queues.get("in-process")
    idle_polls, deadline = 0, time.monotonic() + timeout
    while queue is not None and idle_polls < 2:  # idle twice in a row: nothing was between queue and thread
        with _running_changed:
            idle = _running == 0 and queue[0].pending_count() == 0
        idle_polls = idle_polls + 1 if idle else 0
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    _apps.pop(str(id(app)), None)
    return queue is None or idle_polls >= 2


def enqueue_job(kind: str, job_id: int, attempt: int = 1, delay: float | None = None) -> None:
    """Hand attempt `attempt` of a job whose row is queued to the workers."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    task = queue_of(app)[1]["run_job"]
    args = (_key(app), kind, job_id, attempt)
    if delay:
        task.schedule(args=args, delay=delay)
    else:
        task(*args)


def enqueue_webhooks(app: Flask, delay: float | None = None) -> None:
    """Ask a worker for a webhook delivery pass."""
    task = queue_of(app)[1]["deliver_webhooks"]
    if delay:
        task.schedule(args=(_key(app),), delay=delay)
    else:
        task(_key(app))


def _settings(app: Flask) -> tuple[int, float, timedelta]:
    return (
        int(app.config["JOB_MAX_ATTEMPTS"]),
        float(app.config["JOB_RETRY_SECONDS"]),
        timedelta(seconds=float(app.config["JOB_LEASE_SECONDS"])),
    )


def _execute(app: Flask, kind: str, job_id: int) -> None:
    from webapp.extensions import db, new_analytics_session

    if kind == "export":
        sqlite_write_intent.set(False)  # the export's reader must not hold SQLite's write lock
        exports.run_job(db.sessionmaker, job_id, make_reader=new_analytics_session)
        return
    # An analysis writes progress: SQLite's write lock up front. Mining only reads, and the
    # refresh takes the lock for its short writes itself.
    sqlite_write_intent.set(kind == "analysis")
    with db.sessionmaker() as session:
        if kind == "analysis":
            impact_runs.execute_run(session, job_id)
        else:
            backlog.execute_refresh(session, job_id)


def _run_job(app_key: str, kind: str, job_id: int, attempt: int) -> None:
    from webapp.extensions import db

    app = _app(app_key)
    if app is None:
        log.info("%s %s: its app has ended; attempt %s dropped", kind, job_id, attempt)
        return
    max_attempts, base, _lease = _settings(app)
    with _running_task(), app.app_context():
        token = sqlite_write_intent.set(True)
        try:
            with db.sessionmaker() as session:
                if not background.claim(session, kind, job_id, attempt):
                    return  # another worker has this attempt, or the job has ended
            log.info("%s %s: attempt %s started", kind, job_id, attempt)
            try:
                _execute(app, kind, job_id)
            except Exception as exc:  # recorded on the job's row, then retried or failed after its attempts
                log.exception("%s %s: attempt %s failed", kind, job_id, attempt)
                sqlite_write_intent.set(True)
                with db.sessionmaker() as session:
                    retry = background.failed_attempt(
                        session, kind, job_id, attempt, type(exc).__name__, max_attempts=max_attempts, base_seconds=base
                    )
                if retry.again:
                    enqueue_job(kind, job_id, attempt + 1, delay=retry.delay)
        finally:
            sqlite_write_intent.reset(token)


def _deliver_webhooks(app_key: str = "") -> None:
    """Send the deliveries that are due; never sleeps: a later one is scheduled as a task of its own."""
    from webapp.extensions import db

    app = _app(app_key)
    if app is None:
        return  # an in-process app that has ended
    with _running_task(), app.app_context(), db.sessionmaker() as session:
        due = webhooks.next_due(session)
        session.rollback()
        if due is not None and due <= utcnow():
            token = sqlite_write_intent.set(True)
            try:
                webhooks.deliver_due(session)
            finally:
                sqlite_write_intent.reset(token)
            due = webhooks.next_due(session)
            session.rollback()
        if due is not None:
            wait = (due - utcnow()).total_seconds()
            if wait <= LONGEST_WAIT:  # later ones are found by the worker's minute sweep
                enqueue_webhooks(app, delay=max(wait, 0.01))


def _reclaim_stale() -> None:
    """Queue again the jobs whose worker died (their rows stopped moving)."""
    from webapp.extensions import db

    app = _apps[""]  # the `countersign worker` app (periodic tasks run only there)
    max_attempts, _base, lease = _settings(app)
    with app.app_context():
        token = sqlite_write_intent.set(True)
        try:
            with db.sessionmaker() as session:
                again = background.reclaim_stale(session, lease=lease, max_attempts=max_attempts)
            for kind, job_id, attempt in again:
                log.warning("%s %s: its worker stopped; queued again for attempt %s", kind, job_id, attempt)
                enqueue_job(kind, job_id, attempt)
        finally:
            sqlite_write_intent.reset(token)


def _sweep_guardrails() -> None:
    """Evaluate every active version's guardrails (control charts included), once per host lock."""
    from webapp.extensions import db

    app = _apps[""]  # the `countersign worker` app (periodic tasks run only there)
    huey = queue_of(app)[0]
    token = sqlite_write_intent.set(True)
    try:
        with huey.lock_task("guardrail-sweep", ttl=600), app.app_context(), db.sessionmaker() as session:
            opened = background.sweep_guardrails(session)
        log.info("guardrail sweep: %s alerts opened", opened)
    except TaskLockedException:
        log.info("guardrail sweep: another worker is running it")
    finally:
        sqlite_write_intent.reset(token)


def run(app: Flask, workers: int, sweep_seconds: int = 60) -> None:
    """Consume the queue until SIGTERM/SIGINT (the `countersign worker` command)."""
    if in_process(app):
        raise RuntimeError("JOBS_IN_PROCESS is set: this app runs its jobs itself")
    _apps[""] = app
    huey = queue_of(app)[0]
    with app.app_context():
        _reclaim_stale()  # jobs left by a worker that died while none was running
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=True, check_worker_health=True, scheduler_interval=1
    )
    consumer.run()
