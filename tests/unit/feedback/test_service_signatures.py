"""Every service reads the same way: `(session, actor, *, keyword arguments)`.

The acting person arrives under one name, in one place, so a reader (and a reviewer of a
permission check) never has to ask whether `user`, `reviewer`, `by` or `admin` is the one acting.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SERVICE_MODULES = sorted(
    [*ROOT.glob("feedback/*/services.py")]
    + [ROOT / "feedback" / name for name in ("review/ingest.py", "review/claims.py", "review/decisions.py")]
    + [ROOT / "feedback" / name for name in ("impact/experiments.py", "impact/panels.py", "impact/runs.py")]
    + [ROOT / "feedback/overrides/guardrails.py"]
)
PERSON = {"actor", "user", "reviewer", "by", "admin", "who"}  # a read names its `viewer` instead


def _public_functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]


def test_every_service_an_actor_calls_takes_session_then_actor_then_keywords():
    wrong = []
    for path in SERVICE_MODULES:
        for fn in _public_functions(path):
            names = [a.arg for a in fn.args.args] + [a.arg for a in fn.args.kwonlyargs]
            positional = [a.arg for a in fn.args.args]
            if positional[:1] != ["session"] or not PERSON & set(names):
                continue  # a helper without a session, a read, or a job the system runs: nobody acts
            if positional != ["session", "actor"]:
                wrong.append(f"{path.relative_to(ROOT)}::{fn.name}({', '.join(positional)}, ...)")
    assert wrong == []


def test_the_list_of_service_modules_is_not_empty_or_stale():
    assert all(path.exists() for path in SERVICE_MODULES)
    assert sum(len(_public_functions(path)) for path in SERVICE_MODULES) > 40


UNTYPED_BAGS = ("Mapping[str, Any]", "dict[str, Any]", "Any")
# Bulk paths take rows built by the service's own builder (`recommendation_row`, `challenger_row`,
# `outcome_row`), never by a caller.
OWN_ROWS = {
    "review/ingest.py::store_recommendations(rows)",
    "challengers/services.py::store_rows(rows)",
    "outcomes/services.py::count_and_audit(rows)",
}


def test_services_take_typed_values_not_a_bag_of_fields():
    """A caller hands over values its own parser has checked; the service never re-reads a loose dict."""
    loose = []
    for path in SERVICE_MODULES:
        for fn in _public_functions(path):
            for arg in fn.args.kwonlyargs:
                annotation = ast.unparse(arg.annotation) if arg.annotation else "Any"
                where = f"{path.relative_to(ROOT / 'feedback')}::{fn.name}({arg.arg})"
                if any(bag in annotation for bag in UNTYPED_BAGS) and where not in OWN_ROWS:
                    loose.append(f"{where}: {annotation}")
    assert loose == []
