"""gunicorn on loopback with the project's gunicorn.conf.py, for fault tests and benchmarks."""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.pgserver import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "gunicorn-test"


@dataclass
class Server:
    """A running gunicorn master and where it listens."""

    port: int
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> list[int]:
        """The master's current worker processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]


def wait_until_ready(port: int, path: str = "/readyz", timeout: float = 30.0) -> None:
    """Poll until the server answers 200 on `path`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not become ready")


@contextlib.contextmanager
def gunicorn(url: str, workers: int = 2, threads: int = 4, log: Path | None = None) -> Iterator[Server]:
    """Serve the app on `url`'s database with the production settings, then stop gracefully."""
    port = free_port()
    checkpoints = Path(os.environ.get("TMPDIR", "/tmp")) / f"countersign-checkpoints-{port}.jsonl"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET_KEY,
        "COUNTERSIGN_SESSION_COOKIE_SECURE": "false",
        # Checkpoints of this server's chain only, beside its metrics (never in the checkout's instance/).
        "COUNTERSIGN_AUDIT_KEY": SECRET_KEY + "-audit",
        "COUNTERSIGN_AUDIT_CHECKPOINT_FILE": str(checkpoints),
        "PROMETHEUS_MULTIPROC_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / f"countersign-metrics-{port}"),
    }
    args = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", str(workers), "--threads", str(threads)]
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=output, stderr=output)
    try:
        wait_until_ready(port)
        yield Server(port, process)
    finally:
        process.terminate()
        process.wait(timeout=60)
        checkpoints.unlink(missing_ok=True)
        if log:
            output.close()  # type: ignore[union-attr]
