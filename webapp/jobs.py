"""Analyses, backlog refreshes and exports run off the request path in a small thread pool.

Their progress and results live in the database.

The request that queues a run returns at once and the page polls the run's row, so a long
analysis never holds a web worker. The state is in the database, not in this process: any
worker can show it, and a run whose worker was restarted shows as interrupted.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask, current_app

from feedback import impact, webhooks
from feedback.db import sqlite_write_intent, utcnow

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analysis")


def submit(run_id: int) -> Future[None]:
    """Start computing a queued run in the background."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _pool.submit(_execute, app, run_id)


def _execute(app: Flask, run_id: int) -> None:
    from webapp.extensions import db

    # This task writes progress: take SQLite's write lock up front (reset after: pool threads are reused).
    token = sqlite_write_intent.set(True)
    with app.app_context():
        session = db.sessionmaker()
        try:
            impact.execute_run(session, run_id)
        except Exception:  # a background thread has nobody to raise to
            log.exception("analysis %s could not run", run_id)
        finally:
            session.close()
            sqlite_write_intent.reset(token)


# Webhook deliveries: at most one delivery loop per process; a request for another pass while
# one runs is remembered, so an event queued as the loop finishes is not left waiting.
_delivery_lock = threading.Lock()
_another_pass = threading.Event()
LONGEST_WAIT = 60.0  # beyond this a retry waits for the next event or `countersign webhooks deliver`


def start_webhook_delivery(app: Flask) -> None:
    """Run a delivery loop in the background unless one is already running."""
    _another_pass.set()
    if _delivery_lock.acquire(blocking=False):
        _pool.submit(_deliver_loop, app)


def _deliver_loop(app: Flask) -> None:
    from webapp.extensions import db

    try:
        with app.app_context():
            session = db.sessionmaker()
            try:
                while True:
                    _another_pass.clear()
                    due = webhooks.next_due(session)  # a plain read: no write lock unless there is work
                    session.rollback()
                    if due is None:
                        if not _another_pass.is_set():
                            break
                        continue
                    wait = (due - utcnow()).total_seconds()
                    if wait > LONGEST_WAIT:
                        break
                    if wait > 0:
                        time.sleep(wait)
                        continue
                    token = sqlite_write_intent.set(True)
                    try:
                        webhooks.deliver_due(session)
                    finally:
                        sqlite_write_intent.reset(token)
            finally:
                session.close()
    except Exception:  # a background thread has nobody to raise to
        log.exception("webhook delivery loop failed")
    finally:
        _delivery_lock.release()


def submit_export(job_id: int) -> Future[None]:
    """Write a labelled-data export into the database in the background."""
    from feedback import exports

    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        from webapp.extensions import db, new_analytics_session

        sqlite_write_intent.set(False)  # the export's reader must not hold SQLite's write lock
        with app.app_context():
            try:
                exports.run_job(db.sessionmaker, job_id, make_reader=new_analytics_session)
            except Exception:  # a background thread has nobody to raise to
                log.exception("export %s could not run", job_id)

    return _pool.submit(run)


def submit_backlog_refresh(job_id: int) -> Future[None]:
    """Mine a model's backlog again in the background; the page polls the job's row."""
    from feedback import backlog

    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        from webapp.extensions import db

        # Mining only reads; execute_refresh takes SQLite's write lock just for its short writes.
        token = sqlite_write_intent.set(False)
        with app.app_context():
            session = db.sessionmaker()
            try:
                backlog.execute_refresh(session, job_id)
            except Exception:  # a background thread has nobody to raise to
                log.exception("backlog refresh %s could not run", job_id)
            finally:
                session.close()
                sqlite_write_intent.reset(token)

    return _pool.submit(run)
