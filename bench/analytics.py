"""Benchmark the model owner pages at production scale: the demo plus 1,000,000 decisions, SQLite and PostgreSQL.

`bench.history` builds the database (the demo's world, then the decisions in bulk), gunicorn
serves it, and the overview and breakdown pages of the demo's claims model are timed over HTTP
(median of repeated requests) side by side with `GET /healthz` in the same run: each page's
ratio says how many bare requests it costs. It also reports the largest resident memory of the
gunicorn processes.

    .venv/bin/python -m bench.analytics [--decisions 1000000] [--repeat 5] [--backend sqlite|postgresql|both]
                                        [--sqlite-template instance/bench.sqlite]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

from bench import history
from bench.loop import database, gunicorn
from feedback.overrides import rollup

PAGES = (
    ("overview", "/models/claims_triage"),
    ("breakdown by site", "/models/claims_triage/breakdown?by=site"),
    ("breakdown by segment", "/models/claims_triage/breakdown?by=segment.claim_band"),
    ("breakdown by confidence", "/models/claims_triage/breakdown?by=confidence_decile"),
    ("who was right", "/models/claims_triage/right?by=reviewer"),
)


def signed_in_opener(base: str) -> urllib.request.OpenerDirector:
    """An HTTP client with a session cookie for the model owner."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"email": history.OWNER, "password": history.PASSWORD, "csrf_token": token}).encode()
    opener.open(base + "/login", data=body).read()
    return opener


def gunicorn_rss_mb() -> float:
    """Largest resident set of any gunicorn process, in MB."""
    out = subprocess.run(["ps", "-C", "python", "-o", "rss=,args="], capture_output=True, text=True).stdout
    sizes = [int(line.split()[0]) for line in out.splitlines() if "gunicorn" in line]
    return max(sizes) / 1024 if sizes else float("nan")


def _timed(opener: urllib.request.OpenerDirector, target: str) -> float:
    t0 = time.perf_counter()
    with opener.open(target) as response:
        assert response.status == 200
        response.read()
    return time.perf_counter() - t0


def measure(url: str, label: str, repeat: int) -> list[tuple[str, str, float, float, float]]:
    """Median and worst seconds per page through gunicorn (2 workers), and the median ratio to /healthz."""
    results = []
    with gunicorn(url, workers=2) as port:
        base = f"http://127.0.0.1:{port}"
        opener = signed_in_opener(base)
        period = f"from={(datetime.now(UTC) - timedelta(days=91)).date()}"
        for name, path in PAGES:
            target = base + path + ("&" if "?" in path else "?") + period
            times, bare = [], []
            for _ in range(repeat):
                times.append(_timed(opener, target))
                bare.append(_timed(opener, base + "/healthz"))
            ratio = statistics.median(times) / statistics.median(bare)
            results.append((label, name, statistics.median(times), max(times), ratio))
        results.append((label, "largest gunicorn process (MB)", gunicorn_rss_mb(), float("nan"), float("nan")))
    return results


def main() -> None:
    """Build, serve, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--shards", type=int, default=rollup.SHARDS, help="count shards to spread over (1: as after a recount)"
    )
    parser.add_argument("--per-day", type=int, default=420, help="the demo's own cases a day for 90 days")
    parser.add_argument("--sqlite-template", help="a SQLite file to reuse (built there on first use)")
    args = parser.parse_args()
    rows = []
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            with database(backend, args.decisions, args.sqlite_template, args.per_day, args.shards) as url:
                rows += measure(url, backend, args.repeat)
    print(
        f"\nthe demo plus {args.decisions:,} decisions; all 90 days selected; median of {args.repeat} requests "
        f"through gunicorn, each followed by GET /healthz; load average {os.getloadavg()[0]:.1f}"
    )
    for backend, name, median, worst, ratio in rows:
        if name.startswith("largest"):
            print(f"{backend:<11} {name:<32} {median:8.0f}")
        else:
            timing = f"{median * 1000:8.0f} ms  (worst {worst * 1000:.0f} ms)"
            print(f"{backend:<11} {name:<32} {timing}  {ratio:6.1f} x /healthz")


if __name__ == "__main__":
    main()
