"""How long `make demo` takes from the end of setup to the first page (issue 19: at most 30 s).

It runs what scripts/demo.sh runs after `scripts/setup.sh`, on a fresh SQLite file: `countersign
db upgrade`, `countersign seed-demo --mine-in-worker`, then `countersign worker` and `countersign
serve --workers 2` together, and polls the sign-in page until it answers. Each step's seconds are printed beside the
bare start of the command in the same run (`countersign --help`: Python, Flask and the app's
imports), the floor every step pays.

    .venv/bin/python -m bench.demo_start
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.gunicornserver import ROOT
from tests.pgserver import free_port

COMMAND = [sys.executable, "-m", "webapp.main"]


def timed(args: list[str], env: dict[str, str]) -> float:
    """Seconds one command takes (it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run([*COMMAND, *args], env=env, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def first_page(env: dict[str, str], port: int) -> float:
    """Seconds from starting the worker and `countersign serve` (as demo.sh does) to the sign-in page answering 200."""
    t0 = time.perf_counter()
    quiet = {"env": env, "cwd": ROOT, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    worker = subprocess.Popen([*COMMAND, "worker"], **quiet)
    server = subprocess.Popen(
        [*COMMAND, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        **quiet,
    )
    try:
        while time.perf_counter() - t0 < 120:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/login")
                if conn.getresponse().status == 200:
                    return time.perf_counter() - t0
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer within 120 s")
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    """Time each step and the whole."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'demo.sqlite'}",
            "SECRET_KEY": "bench-demo-start",
            "COUNTERSIGN_SESSION_COOKIE_SECURE": "false",
            "COUNTERSIGN_AUDIT_CHECKPOINT_FILE": str(Path(tmp) / "checkpoints.jsonl"),
        }
        bare = timed(["--help"], env)
        steps = {
            "db upgrade": timed(["db", "upgrade"], env),
            "seed-demo": timed(["seed-demo", "--mine-in-worker"], env),
            "serve to the first page": first_page(env, free_port()),
        }
    total = sum(steps.values())
    print(f"load average {os.getloadavg()[0]:.1f}; bare `countersign --help`: {bare:.1f} s")
    for name, seconds in steps.items():
        print(f"  {name:<26} {seconds:6.1f} s  ({seconds / bare:5.1f} x the bare start)")
    print(f"  {'end of setup to first page':<26} {total:6.1f} s  (goal: at most 30 s)")


if __name__ == "__main__":
    main()
