"""Signed checkpoints of the audit chain's head, kept outside the database.

The chain's SHA-256 links need no secret, so whoever can write to the database can delete the
last events and move `audit_head` back, or edit an event and recompute every later hash, and
the chain still checks out. A checkpoint records the head (sequence number and hash) at a
moment, signed with HMAC-SHA256 under a key that never enters the database, in a file (and the
log) outside it. The database writer can neither forge nor move one, so `audit verify` given the
checkpoints finds both rewrites: an event a checkpoint saw is gone, or its hash has changed.

The key signs and checks checkpoints only: the chain itself stays keyless, so the PostgreSQL
append function (migration 0010) keeps hashing in the database and never sees the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

LOG_PREFIX = "audit checkpoint "
_CONTEXT = "countersign audit checkpoint v1"


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, signed."""

    seq: int
    hash: str
    at: str
    mac: str

    def signed_with(self, key: bytes) -> bool:
        """True when the signature is this key's over these fields."""
        return hmac.compare_digest(self.mac.encode(), signature(key, self.seq, self.hash, self.at).encode())

    def line(self) -> str:
        """The checkpoint as one JSON line."""
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at, "mac": self.mac}, separators=(",", ":"))


def signature(key: bytes, seq: int, head_hash: str, at: str) -> str:
    """HMAC-SHA256 of a checkpoint's fields under the audit key."""
    message = f"{_CONTEXT}\n{seq}\n{head_hash}\n{at}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, seq: int, head_hash: str, at: datetime | None = None) -> Checkpoint:
    """A checkpoint of (seq, head_hash), signed now."""
    stamp = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return Checkpoint(seq, head_hash, stamp, signature(key, seq, head_hash, stamp))


def load_key(configured: str, instance_path: str) -> bytes:
    """The audit key: the configured one, else one kept in instance/audit_key (created on first use)."""
    if configured:
        return configured.encode()
    path = Path(instance_path) / "audit_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a private name, then linked into place: a worker racing this one
        # finds either no key or the complete key, never an empty file.
        draft = path.with_name(f".audit_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            os.link(draft, path)
        except FileExistsError:
            pass  # another worker's key won
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"the audit key in {path} is empty")
    return key.encode()


def head(connection: Connection | Session) -> tuple[int, str]:
    """The committed head of the chain: (last sequence number, its hash)."""
    row = connection.execute(text("SELECT seq, last_hash FROM audit_head WHERE id = 1")).one()
    return int(row.seq), str(row.last_hash)


def append(path: Path, checkpoint: Checkpoint) -> None:
    """Add a checkpoint to the file in one write (appends from several processes never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (checkpoint.line() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Anchors:
    """Checkpoints read back: the valid ones by sequence number, and what was wrong with the rest."""

    by_seq: dict[int, Checkpoint] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    read: int = 0

    @property
    def latest(self) -> Checkpoint | None:
        """The checkpoint furthest along the chain."""
        return self.by_seq[max(self.by_seq)] if self.by_seq else None


def _parse(line: str) -> Checkpoint:
    """A checkpoint line, or a JSON log record carrying one; ValueError for anything else."""
    value = json.loads(line)
    if isinstance(value, dict) and str(value.get("message", "")).startswith(LOG_PREFIX):
        value = json.loads(value["message"][len(LOG_PREFIX) :])
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    try:
        return Checkpoint(int(value["seq"]), str(value["hash"]), str(value["at"]), str(value["mac"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"missing or wrong field: {exc}") from None


def read(key: bytes, paths: Iterable[Path]) -> Anchors:
    """Every checkpoint in these files (checkpoint files or JSON logs), each signature checked."""
    anchors = Anchors()
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if '"mac' not in line:
                    continue  # another log line
                where = f"{path}:{number}"
                try:
                    found = _parse(line)
                except ValueError:
                    anchors.problems.append(f"{where} is not a readable checkpoint")
                    continue
                if not found.signed_with(key):
                    anchors.problems.append(f"{where}: the checkpoint's signature is wrong (forged, or another key)")
                    continue
                anchors.read += 1
                seen = anchors.by_seq.get(found.seq)
                if seen is not None and seen.hash != found.hash:
                    anchors.problems.append(f"{where}: two signed checkpoints disagree about event #{found.seq}")
                elif found.seq > 0:
                    anchors.by_seq.setdefault(found.seq, found)
    return anchors
