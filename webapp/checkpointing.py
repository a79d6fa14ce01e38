"""Signed checkpoints of the audit chain, written as the app runs (see feedback/checkpoints.py).

After a request that wrote, a process appends a checkpoint of the committed chain head once
`AUDIT_CHECKPOINT_SECONDS` have passed since its last one, to `AUDIT_CHECKPOINT_FILE` and to
the log. `countersign audit checkpoint` writes one at once (for cron, when the app is idle).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import Engine

from feedback import checkpoints
from feedback.checkpoints import Checkpoint
from feedback.db import sqlite_write_intent

log = logging.getLogger("countersign.audit")


class Checkpointer:
    """One process's checkpoint writer: at most one checkpoint per interval, none while the head stands still."""

    def __init__(self, app: Flask) -> None:
        """Read the settings; the key is loaded when first needed."""
        configured = str(app.config.get("AUDIT_CHECKPOINT_FILE") or "")
        self.path = Path(app.instance_path, configured) if configured else None
        self.interval = float(app.config["AUDIT_CHECKPOINT_SECONDS"])
        self._configured_key = str(app.config.get("AUDIT_KEY") or "")
        self._instance_path = app.instance_path
        self._key: bytes | None = None
        self._lock = threading.Lock()
        self._due = 0.0
        self._last_seq: int | None = None

    def key(self) -> bytes:
        """The audit key (never stored in the database, never logged)."""
        if self._key is None:
            self._key = checkpoints.load_key(self._configured_key, self._instance_path)
        return self._key

    def after_write(self, engine: Engine) -> None:
        """Write a checkpoint if one is due; a failure is logged, never raised into a request."""
        if self.path is None or time.monotonic() < self._due or not self._lock.acquire(blocking=False):
            return
        try:
            self._due = time.monotonic() + self.interval
            self.write(engine)
        except Exception:  # the request already succeeded; a write after the interval tries again
            log.exception("could not write an audit checkpoint")
        finally:
            self._lock.release()

    def write(self, engine: Engine, force: bool = False) -> Checkpoint | None:
        """Sign and append the committed head (unless it has not moved since this process's last one)."""
        if self.path is None:
            return None
        token = sqlite_write_intent.set(False)  # a plain read: never queue for SQLite's write lock
        try:
            with engine.connect() as connection:
                seq, head_hash = checkpoints.head(connection)
        finally:
            sqlite_write_intent.reset(token)
        if seq == self._last_seq and not force:
            return None
        checkpoint = checkpoints.sign(self.key(), seq, head_hash)
        checkpoints.append(self.path, checkpoint)
        log.info("%s%s", checkpoints.LOG_PREFIX, checkpoint.line())
        self._last_seq = seq
        return checkpoint


def init_app(app: Flask) -> None:
    """Give the app its checkpoint writer."""
    app.extensions["countersign_checkpoints"] = Checkpointer(app)


def checkpointer_of(app: Flask | None = None) -> Checkpointer:
    """The app's checkpoint writer (the current app's by default)."""
    found: Checkpointer = (app or current_app).extensions["countersign_checkpoints"]
    return found
