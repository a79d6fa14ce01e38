"""Stream a labelled-data export of 1,000,000 decided cases through gunicorn and watch its memory.

Builds the same 1,000,000-decision database as bench.analytics, starts gunicorn with one
gthread worker, downloads `GET /api/v1/exports/decisions` in each format, and samples the worker's
resident memory every 50 ms. The rows are counted on arrival (Parquet is read back with pandas).

    .venv/bin/python -m bench.export [--decisions 1000000] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.analytics import build
from bench.loop import gunicorn
from feedback.accounts import services as accounts
from feedback.audit import Actor
from tests import pgserver


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
        "GET", f"/api/v1/exports/decisions?model=claims&format={fmt}", headers={"Authorization": f"Bearer {token}"}
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


def run(url: str, label: str, decisions: int) -> list[str]:
    print(f"{label}: built in {build(url, decisions):.0f} s", flush=True)
    engine = create_engine(url)
    with Session(engine) as session:
        token = accounts.create_token(session, Actor(None, "bench"), email="owner@bench.test")
    engine.dispose()
    lines = []
    # gthread, as `countersign serve` runs it: a sync worker is killed after --timeout mid-stream.
    with gunicorn(url, workers=1, threads=2) as port, tempfile.TemporaryDirectory() as tmp:
        idle = worker_rss_mb()
        for fmt in ("csv", "parquet", "jsonl"):
            path = Path(tmp) / f"export.{fmt}"
            seconds, peak, size = export(port, token, fmt, path)
            count = rows_in(path, fmt)
            path.unlink()
            lines.append(
                f"{label:<11} {fmt:<8} {count:>9,} rows  {seconds:6.1f} s  {size / 2**20:7.0f} MB  "
                f"worker RSS peak {peak:4.0f} MB (idle {idle:.0f} MB)"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    args = parser.parse_args()
    lines = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            lines += run(f"sqlite:///{tmp}/bench.sqlite", "sqlite", args.decisions)
    if args.backend in ("postgresql", "both"):
        with pgserver.running_postgres("countersign_bench", durable=True) as url:
            lines += run(url, "postgresql", args.decisions)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
