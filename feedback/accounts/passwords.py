"""Which passwords we accept, after NIST SP 800-63B revision 4 (section 3.1.1.2).

A password is the only factor here, so it needs at least 15 characters; up to 128 are accepted
(NIST asks for at least 64) and every character counts, spaces and Unicode included. There are
no composition rules (no "one digit, one symbol") and no expiry.

New passwords are compared with a blocklist of common and breached values, taken from zxcvbn
(pinned at 4.5.0), not typed into our code. Why zxcvbn: it ships its lists inside the package, so
setting a password needs no outside service (the Pwned Passwords API would send a hash prefix of
every new password to a third party, and fail when it is unreachable); it is the estimator Dropbox
built for this job and is still maintained; and its matcher recognises more than exact entries.
Its 30,000 most frequent breached passwords are refused outright, and so is anything it can guess
in fewer than a million tries: variants of those passwords (capitals, l33t, reversed), repeats,
sequences, keyboard walks, and words from the user's own context (e-mail, name, the service's
name), which NIST also asks us to refuse. A million guesses is far beyond what sign-in throttling
lets anyone try online, and long random text or a few unrelated words pass easily.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 15
MAX_LENGTH = 128
# zxcvbn estimates guesses as a power of ten; below 10**6 the password is "expected".
MIN_GUESSES_LOG10 = 6.0
# zxcvbn's matching is quadratic in length; a prefix this long already decides the estimate.
ESTIMATE_PREFIX = 64
SERVICE_WORDS = ("countersign",)


def normalise(password: str) -> str:
    """The form passwords are hashed and checked in (NFKC, as NIST recommends for Unicode)."""
    return unicodedata.normalize("NFKC", password)


@functools.cache
def _breached() -> frozenset[str]:
    """zxcvbn's list of the most common passwords in breach corpora (lower case)."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def context_words(email: str, name: str = "") -> list[str]:
    """The user's own words a password must not be built from."""
    local = email.split("@")[0]
    words = [email, local, *re.split(r"[\W_]+", local), name, *name.split()]
    words += ["".join(ch for ch in w if ch.isalnum()) for w in (local, name)]  # "ana.lopez" -> "analopez"
    return sorted({w.lower() for w in words if len(w) >= 3})


def password_problem(password: str, context: Sequence[str] = ()) -> str | None:
    """Why a new password is refused (for the form's `password` field), or None when it is fine."""
    password = normalise(password)
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if "\x00" in password:
        return "must not contain NUL characters"
    if password.casefold() in _breached():
        return "is one of the most common passwords in data breaches; choose another"
    estimate = zxcvbn(password[:ESTIMATE_PREFIX], user_inputs=[*SERVICE_WORDS, *context])
    if float(estimate["guesses_log10"]) < MIN_GUESSES_LOG10:
        return (
            "is too easy to guess (a common password or a variant of one, a repeat, a sequence, "
            "or your own name or e-mail); a few unrelated words work well"
        )
    return None
