"""Stream a labelled-data export of the demo's claims model with 1,000,000 decisions of history; watch memory.

Builds the same database as bench.analytics (`bench.history`: the demo plus the decisions),
starts gunicorn with one gthread worker, downloads `GET /api/v1/exports/decisions` in each
format, and samples the worker's resident memory every 50 ms. The rows are counted on arrival
(Parquet is read back with pandas). Each export's cost per 1,000 rows is set beside the median
`GET /healthz` measured just before it on the same server.

    .venv/bin/python -m bench.export [--decisions 1000000] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.loop import database, get, gunicorn
from feedback.accounts import tokens
from feedback.audit import Actor


def worker_rss_mb() -> float:
    """Largest resident set of any gunicorn process, in MB."""
    out = subprocess.run(["ps", "-C", "python", "-o", "rss=,args="], capture_output=True, text=True).stdout
    sizes = [int(line.split()[0]) for line in out.splitlines() if "gunicorn" in line]
    return max(sizes) / 1024 if sizes else 0.0


def export(port: int, token: str, fmt: str, out: Path) -> tuple[float, float, int]:
    """Seconds, peak worker RSS (MB) and bytes for one streamed export."""
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], worker_rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(
        "GET",
        f"/api/v1/exports/decisions?model=claims_triage&format={fmt}",
        headers={"Authorization": f"Bearer {token}"},
    )
    response = conn.getresponse()
    assert response.status == 200, response.read()[:500]
    size = 0
    with out.open("wb") as handle:
        while chunk := response.read(1 << 20):
            handle.write(chunk)
            size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return seconds, peak[0], size


def rows_in(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return len(pd.read_parquet(path, columns=["case_id"]))
    with path.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return lines - 1 if fmt == "csv" else lines


def healthz_ms(port: int, n: int = 50) -> float:
    """Median milliseconds of GET /healthz: the bare request each export is compared with."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert get(conn, "/healthz") == 200
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return statistics.median(times)


def run(url: str, label: str) -> list[str]:
    engine = create_engine(url)
    with Session(engine) as session:
        token = tokens.create_token(session, Actor(None, "bench"), email="owner@countersign.test")
    engine.dispose()
    lines = []
    # gthread, as `countersign serve` runs it: a sync worker is killed after --timeout mid-stream.
    with gunicorn(url, workers=1, threads=2) as port, tempfile.TemporaryDirectory() as tmp:
        idle = worker_rss_mb()
        for fmt in ("csv", "parquet", "jsonl"):
            path = Path(tmp) / f"export.{fmt}"
            bare = healthz_ms(port)
            seconds, peak, size = export(port, token, fmt, path)
            count = rows_in(path, fmt)
            path.unlink()
            per_thousand = seconds * 1000 / (count / 1000)
            lines.append(
                f"{label:<11} {fmt:<8} {count:>9,} rows  {seconds:6.1f} s  {size / 2**20:7.0f} MB  "
                f"worker RSS peak {peak:4.0f} MB (idle {idle:.0f} MB)  "
                f"1,000 rows cost {per_thousand / bare:.1f} x /healthz ({bare:.2f} ms)"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--per-day", type=int, default=420, help="the demo's own cases a day for 90 days")
    parser.add_argument("--sqlite-template", help="a SQLite file to reuse (built there on first use)")
    args = parser.parse_args()
    lines = []
    for backend in ("sqlite", "postgresql"):
        if args.backend in (backend, "both"):
            with database(backend, args.decisions, args.sqlite_template, args.per_day) as url:
                lines += run(url, backend)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
