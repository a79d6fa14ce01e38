"""A throwaway PostgreSQL server from Debian's binaries, for the test suite and the benchmarks."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

from sqlalchemy import create_engine, make_url, text


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bindir() -> str | None:
    """Directory of Debian's PostgreSQL server binaries, newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


@dataclasses.dataclass
class Cluster:
    """A private PostgreSQL cluster: its URL, and a way to crash and restart it."""

    url: str
    pg_ctl: list[str]

    def restart(self, mode: str = "immediate") -> None:
        """Stop the server (`immediate` is a crash: no checkpoint, recovery from WAL) and start it again."""
        subprocess.run([*self.pg_ctl, "-m", mode, "-w", "restart"], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def running_postgres(database: str = "countersign_test", durable: bool = False) -> Iterator[str]:
    """Start a private cluster on loopback, yield a URL to a fresh database, then delete it all.

    Tests run with fsync off; benchmarks pass durable=True to measure honest commit costs.
    """
    with postgres_cluster(database, durable) as cluster:
        yield cluster.url


def _workdir() -> tuple[str, str, list[str]]:
    """Server binaries, a fresh directory the server may own, and the command prefix to run as its owner."""
    binaries = bindir()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries not found (run scripts/setup.sh --test)")
    workdir = tempfile.mkdtemp(prefix="countersign-pg-")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        account = pwd.getpwnam("postgres")
        os.chown(workdir, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    return binaries, workdir, prefix


@contextlib.contextmanager
def postgres_cluster(database: str = "countersign_test", durable: bool = False) -> Iterator[Cluster]:
    """`running_postgres`, yielding the cluster so tests can restart it."""
    binaries, workdir, prefix = _workdir()
    data, port = os.path.join(workdir, "data"), free_port()
    subprocess.run(
        [*prefix, f"{binaries}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg_ctl = [*prefix, f"{binaries}/pg_ctl", "-D", data, "-l", os.path.join(workdir, "log"), "-o", options]
    subprocess.run([*pg_ctl, "-w", "start"], check=True, capture_output=True)
    try:
        admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        yield Cluster(f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}", pg_ctl)
    finally:
        subprocess.run([*prefix, f"{binaries}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def streaming_standby(primary_url: str) -> Iterator[str]:
    """A hot standby of the cluster behind `primary_url`, fed by streaming replication; yields its URL.

    initdb's trust rules admit replication connections on loopback, and wal_level defaults to
    `replica`, so any cluster started here can be copied with pg_basebackup and followed.
    """
    url = make_url(primary_url)
    binaries, workdir, prefix = _workdir()
    data, port = os.path.join(workdir, "data"), free_port()
    source = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    subprocess.run(
        [*prefix, f"{binaries}/pg_basebackup", *source, "-D", data, "-R", "-X", "stream", "-c", "fast", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # A hot standby needs at least the primary's max_connections (postgres_cluster sets 200).
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c hot_standby=on -c max_connections=200"
    pg_ctl = [*prefix, f"{binaries}/pg_ctl", "-D", data, "-l", os.path.join(workdir, "log"), "-o", options]
    subprocess.run([*pg_ctl, "-w", "start"], check=True, capture_output=True, timeout=60)
    try:
        yield url.set(port=port).render_as_string(hide_password=False)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
