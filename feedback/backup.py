"""Backups and restores of the whole database, for SQLite and PostgreSQL.

SQLite: SQLite's online backup API, a consistent copy taken while the app keeps serving; a
restore checks the copy (integrity and audit chain) before it replaces anything.
PostgreSQL: `pg_dump --format=custom` and `pg_restore --clean` in one transaction. Credentials
travel in libpq's environment variables, never on a command line where `ps` would show them.
Either way the restored audit chain is verified, and a broken one is reported.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from feedback.audit import VerifyReport, verify_chain


class BackupError(Exception):
    """A backup or restore could not be done; nothing was changed."""


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _pg_tool(name: str) -> str:
    """pg_dump or pg_restore: the newest of Debian's versioned directories, else on PATH."""
    versioned = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    found = versioned[-1] if versioned else shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian package postgresql-client)")
    return found


def _pg_env(url: URL) -> dict[str, str]:
    """libpq settings for the URL's server, user, password and database."""
    env = dict(os.environ)
    for key, value in {
        "PGHOST": url.host,
        "PGPORT": url.port,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }.items():
        if value is not None:
            env[key] = str(value)
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-2000:]}")


def verify(url: str) -> VerifyReport:
    """Check the audit chain of the database at `url`."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return verify_chain(session)
    finally:
        engine.dispose()


def backup(url: str, target: Path) -> None:
    """Write a consistent copy of the database at `url` to `target`."""
    parsed = make_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(parsed))
        copy = sqlite3.connect(target)
        try:
            with copy:
                source.backup(copy)
        finally:
            copy.close()
            source.close()
    elif parsed.get_backend_name() == "postgresql":
        _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}"], _pg_env(parsed))
    else:
        raise BackupError(f"no backup method for {parsed.get_backend_name()}")


def restore(url: str, source: Path) -> VerifyReport:
    """Replace the database at `url` with the backup in `source`; return the restored chain's check."""
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        report = verify(f"sqlite:///{source}")  # check the copy before anything is replaced
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            if backup_db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(f"{source} is damaged (integrity check failed)")
            if not report.ok:
                raise BackupError(f"the audit chain in {source} is broken: {report.problems[0]}")
            live = sqlite3.connect(_sqlite_path(parsed))
            try:
                with live:
                    backup_db.backup(live)
            finally:
                live.close()
        finally:
            backup_db.close()
    elif parsed.get_backend_name() == "postgresql":
        args = [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction"]
        _run([*args, f"--dbname={parsed.database}", str(source)], _pg_env(parsed))
    else:
        raise BackupError(f"no restore method for {parsed.get_backend_name()}")
    return verify(url)
