"""Configuration: defaults, then environment variables."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


def database_url(raw: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def instance_secret_key(instance_path: str) -> str:
    """A per-installation secret kept in instance/ so restarts and workers share it."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def defaults() -> dict[str, Any]:
    """Settings every installation starts from."""
    return {
        "DATABASE_URL": "sqlite:///countersign.sqlite",
        # Optional read replica (a PostgreSQL hot standby) for the analytics pages and exports.
        "ANALYTICS_DATABASE_URL": "",
        "MAX_CONTENT_LENGTH": 20 * 1024 * 1024,
        "MAX_BATCH": 1000,
        # Finished exports are kept this many days, then removed when someone queues a new one.
        "EXPORT_KEEP_DAYS": 7,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Cookies travel over HTTPS only; the loopback demo and the tests turn this off.
        "SESSION_COOKIE_SECURE": True,
        # A session ends 12 hours after sign-in however busy it is, and after 30 idle minutes.
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "SESSION_IDLE_SECONDS": 30 * 60,
        "WTF_CSRF_TIME_LIMIT": None,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "METRICS_TOKEN": "",
        "TRUSTED_PROXIES": 0,
        # Failed sign-ins per (account, address) before delays start, the first delay (doubling
        # after each further failure) and its cap; and failures on one account from addresses
        # that never signed in to it before those addresses share a delay (NIST's limit is 100);
        # and failures from one address on accounts it never signed in to (password spraying).
        "LOGIN_FREE_FAILURES": 5,
        "LOGIN_FIRST_DELAY_SECONDS": 30,
        "LOGIN_MAX_DELAY_SECONDS": 900,
        "LOGIN_ACCOUNT_FAILURES": 100,
        "LOGIN_ADDRESS_FAILURES": 50,
        # Signed checkpoints of the audit chain's head (docs/security.md). The key signs them and
        # never enters the database; empty: a random key kept in instance/audit_key.
        "AUDIT_KEY": "",
        # Appended to after a write once this many seconds have passed since the last one
        # (relative paths are under instance/; empty turns checkpoints off).
        "AUDIT_CHECKPOINT_FILE": "audit-checkpoints.jsonl",
        "AUDIT_CHECKPOINT_SECONDS": 60,
        # The review screen ignores keys until a case it swapped in has been painted and this many
        # milliseconds have passed, so a double tap never decides a case nobody has looked at.
        "DECISION_SETTLE_MS": 400,
        # Background jobs (webapp/worker.py): False queues them for `countersign worker`; True runs
        # them on threads of this process (tests and development only, never under gunicorn).
        "JOBS_IN_PROCESS": False,
        "QUEUE_URL": "",  # empty: next to DATABASE_URL (its own schema on PostgreSQL)
        # A job is tried this many times; a failed attempt waits JOB_RETRY_SECONDS, doubling; a job
        # whose row has not moved for JOB_LEASE_SECONDS lost its worker and is queued again (by
        # the minute's sweep, before the pages would call it interrupted after 5 minutes).
        "JOB_MAX_ATTEMPTS": 3,
        "JOB_RETRY_SECONDS": 10,
        "JOB_LEASE_SECONDS": 240,
        "NODE_MODULES": str(Path(__file__).resolve().parent.parent / "node_modules"),
    }
