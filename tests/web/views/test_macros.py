"""Due times in plain words."""

from __future__ import annotations

from datetime import timedelta

import pytest

from feedback.db import utcnow
from webapp import create_app


@pytest.mark.parametrize(
    "minutes,words",
    [
        (30, "due in 30 min"),
        (120, "due in 2 h"),
        (125, "due in 2 h 5 min"),
        (-61, "overdue by 1 h 1 min"),
        (60 * 24 * 3, "due in 3 days"),
    ],
)
def test_due_words(minutes, words):
    app = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "x"})  # templates only; no database
    now = utcnow()
    with app.app_context():
        module = app.jinja_env.get_template("_macros.html").module
        html = str(module.due(now + timedelta(minutes=minutes, seconds=1 if minutes > 0 else 0), now))
    assert words in html
    assert ("overdue" in html) == (minutes < 0)
