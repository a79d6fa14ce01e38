"""The layers hold: the code's shape is checked, not only remembered."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lines_matching(folder: str, pattern: str, glob: str = "*.py") -> list[str]:
    """Every `path:line: text` under a folder whose text matches the pattern."""
    found = []
    for path in sorted((ROOT / folder).rglob(glob)):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py or in fixtures, so a test module can be read alone."""
    assert lines_matching("tests", r"^\s*from (tests\.(unit|web|browser)(\.\w+)*\.test_\w+|\.test_\w+) import") == []


def test_views_read_through_the_domain():
    """No `select(` in webapp/: views and the API ask feedback/ for what they show."""
    assert lines_matching("webapp", r"\bselect\(") == []


def test_the_domain_never_imports_flask_and_analytics_stays_pure():
    assert lines_matching("feedback", r"^\s*(from|import) (flask|webapp)\b") == []
    assert lines_matching("analytics", r"^\s*(from|import) (flask|webapp|feedback|sqlalchemy)\b") == []
