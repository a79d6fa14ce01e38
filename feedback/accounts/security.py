"""Password hashing (argon2) and API token generation (only hashes are stored)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from feedback.accounts.passwords import normalise

_hasher = PasswordHasher()
TOKEN_PREFIX = "cs_"


def hash_password(password: str) -> str:
    """Return an argon2id hash of the password (in its normalised form)."""
    return _hasher.hash(normalise(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Check a password against its stored hash without raising."""
    try:
        return _hasher.verify(password_hash, normalise(password))
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """Return a fresh random API token (shown once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 of a token; tokens are high-entropy, so a fast hash is the right one."""
    return hashlib.sha256(token.encode()).hexdigest()
