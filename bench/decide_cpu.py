"""CPU per decision, in-process: the UI path (htmx decide + claim and render the next case) and the API.

It runs on the demo's world plus `--history` past decisions (`bench.history`), against the Flask
app in this process (no server, no network), so `time.thread_time` counts the CPU of one
request in the thread that serves it, database driver included (SQLite runs in-process too, so
on SQLite its work counts; on PostgreSQL the server's CPU does not). Thread time, not process
time: the app's background threads (job consumer, checkpoints) would otherwise count too. Beside
each decision it times `GET /healthz` the same way: the ratio says how many bare requests one
decision costs in CPU. With --profile, cProfile
runs over the UI or the API decisions and the hottest functions are printed, and the whole
profile is saved to decide_cpu.prof (issue 19: at most 6 ms of CPU per UI decision).

    .venv/bin/python -m bench.decide_cpu [--decisions 300] [--history 1000000]
                                          [--backend sqlite|postgresql] [--sqlite-template instance/bench.sqlite]
                                          [--profile ui|api] [--url URL]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import re
import statistics
import time
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bench import loop
from feedback.models import User
from tests.gunicornserver import SECRET_KEY
from webapp import create_app
from webapp.auth import session_fields

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
CASE_ID = re.compile(r'id="review-panel"[^>]*data-case-id="(\d+)"')
SHOWN = re.compile(r'name="shown" value="([^"]+)"')


def _cpu_ms(fn: Any) -> tuple[float, Any]:
    t0 = time.thread_time()
    result = fn()
    return (time.thread_time() - t0) * 1000, result


def measure(url: str, decisions: int, profile: str | None) -> dict[str, Any]:
    """Median CPU ms of UI decisions, API decisions and /healthz; optionally one path's profile ("ui", "api")."""
    service, tokens = loop.prepare(url, reviewers=2)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "COUNTERSIGN_SESSION_COOKIE_SECURE": False})
    engine = create_engine(url)
    with Session(engine) as session:
        user_id, generation = session.execute(
            select(User.id, User.session_generation).where(User.email == "reviewer01@countersign.test")
        ).one()
    engine.dispose()
    cookie = app.session_interface.get_signing_serializer(app).dumps(session_fields(user_id, generation))  # type: ignore[attr-defined]
    logging.disable(logging.INFO)  # the access log would time the terminal, not the app
    client = app.test_client()
    client.set_cookie("session", cookie)
    api = app.test_client()
    # Open cases for both paths: the UI claims from the queue, the API decides by id.
    ids: list[int] = []
    for b in range(-(-2 * decisions // 1000) + 1):
        answer = api.post(
            "/api/v1/recommendations",
            json=[loop.item(b * 1000 + i) for i in range(1000)],
            headers={"Authorization": f"Bearer {service}"},
        )
        assert answer.status_code == 201, answer.text
        ids.extend(i["id"] for i in answer.json["items"])
    csrf = CSRF_INPUT.search(client.get("/queue").text).group(1)  # type: ignore[union-attr]
    headers = {"HX-Request": "true", "X-CSRFToken": csrf}
    # Leeds only: there the demo's models both show the AI, so "accept" is a valid decision.
    page = client.post("/review/next?site=Leeds", data={"csrf_token": csrf}, headers=headers).text

    def decide_ui() -> str:
        case, shown = CASE_ID.search(page), SHOWN.search(page)
        assert case and shown, "no case to decide"
        answer = client.post(
            f"/review/{case.group(1)}/decision?site=Leeds",
            data={"action": "accept", "csrf_token": csrf, "shown": shown.group(1)},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text[:500]
        return answer.text

    ui, bare = [], []
    profiler = cProfile.Profile(time.thread_time) if profile else None  # CPU, not waiting
    for _ in range(decisions):
        if profiler and profile == "ui":
            profiler.enable()
        spent, page = _cpu_ms(decide_ui)
        if profiler:
            profiler.disable()
        ui.append(spent)
        bare.append(_cpu_ms(lambda: api.get("/healthz"))[0])
    decided = {int(m) for m in re.findall(r'data-case-id="(\d+)"', page)}
    api_cpu = []
    n = 0
    for rec_id in ids:
        if n == decisions or rec_id in decided:
            continue
        if profiler and profile == "api":
            profiler.enable()
        spent, answer = _cpu_ms(
            lambda rec_id=rec_id: api.post(
                f"/api/v1/recommendations/{rec_id}/decision",
                json={"action": "accept"},
                headers={"Authorization": f"Bearer {tokens[1]}"},
            )
        )
        if profiler:
            profiler.disable()
        if answer.status_code == 201:
            api_cpu.append(spent)
            n += 1
    result: dict[str, Any] = {
        "ui_decision_cpu_ms": round(statistics.median(ui), 2),
        "ui_decision_cpu_p90_ms": round(sorted(ui)[int(len(ui) * 0.9)], 2),
        "api_decision_cpu_ms": round(statistics.median(api_cpu), 2),
        "healthz_cpu_ms": round(statistics.median(bare), 3),
        "ui_cpu_ratio": round(statistics.median(ui) / statistics.median(bare), 1),
        "api_cpu_ratio": round(statistics.median(api_cpu) / statistics.median(bare), 1),
    }
    if profiler:
        profiler.dump_stats("decide_cpu.prof")  # for `python -m pstats decide_cpu.prof` (callers, callees)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(r"feedback|webapp|jinja2/environment|sqlalchemy/orm/session", 30)
        result["profile"] = out.getvalue()
    return result


def main() -> None:
    """Build (or copy) the database, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--per-day", type=int, default=420)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sqlite-template", help="a SQLite file to reuse (built there on first use)")
    parser.add_argument("--profile", choices=("ui", "api"), help="cProfile this path's decisions")
    parser.add_argument("--url", help="a database bench.history built (then --backend names its kind)")
    args = parser.parse_args()
    with loop.database(args.backend, args.history, args.sqlite_template, args.per_day, url=args.url) as url:
        result = measure(url, args.decisions, args.profile)
    profile = result.pop("profile", "")
    print(f"{args.backend}, the demo plus {args.history:,} decisions, {args.decisions} decisions each way (median):")
    print("  ".join(f"{k}={v}" for k, v in result.items()))
    if profile:
        print(profile)


if __name__ == "__main__":
    main()
