"""The `countersign` command: the Flask CLI with the app factory and our commands."""

from __future__ import annotations

from flask.cli import FlaskGroup

from feedback.db import sqlite_write_intent
from webapp import create_app


def main() -> None:
    """Entry point of the `countersign` command."""
    sqlite_write_intent.set(True)  # CLI commands write; take SQLite's write lock up front.
    FlaskGroup(create_app=create_app, help="Countersign: human-in-the-loop decision feedback.")(prog_name="countersign")


if __name__ == "__main__":
    main()
