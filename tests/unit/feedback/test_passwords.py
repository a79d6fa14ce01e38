"""Password rules after NIST SP 800-63B rev. 4: length and a blocklist, no composition rules."""

from __future__ import annotations

import time

import pytest

from demo.catalog import DEMO_PASSWORD, STAFF
from feedback.accounts.passwords import MAX_LENGTH, MIN_LENGTH, context_words, password_problem
from feedback.accounts.security import hash_password, verify_password
from tests.factories import PASSWORD


@pytest.mark.parametrize(
    "password",
    [
        "a" * 0 + "lantern harbour",  # 15 characters, lower case and a space: no composition rules
        "correct horse battery",
        "ünïcödé pässwörd ❤ fine",
        "x7Kq!9zL2@pW4#nR",
        "q" + "lantern harbour quietly under the old stone bridge near the river and the mill " * 1 + "z",
    ],
)
def test_long_passwords_pass_whatever_their_characters(password):
    assert password_problem(password) is None


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("fourteen chars", f"at least {MIN_LENGTH}"),
        ("x7Kq!9zL2@pW4#" + "r" * (MAX_LENGTH - 13), f"at most {MAX_LENGTH}"),
        ("lantern\x00harbour quietly", "NUL"),
        # Breached passwords from zxcvbn's list, whatever their case.
        ("1qaz2wsx3edc4rfv", "most common passwords"),
        ("QWERTYUIOP12345", "most common passwords"),
        # Expected values: repeats, sequences, keyboard walks, variants of common passwords.
        ("passwordpassword", "too easy to guess"),
        ("aaaaaaaaaaaaaaa", "too easy to guess"),
        ("123456789012345", "too easy to guess"),
        ("abcdefghijklmnop", "too easy to guess"),
        ("P@ssw0rd1234567", "too easy to guess"),
        ("iloveyouiloveyou", "too easy to guess"),
        ("x" * MAX_LENGTH, "too easy to guess"),
    ],
)
def test_short_long_common_and_expected_passwords_are_refused(password, problem):
    assert problem in (password_problem(password) or "")


def test_the_users_own_words_and_the_service_name_are_refused():
    context = context_words("ana.lopez@example.test", "Ana Lopez")
    assert "too easy" in (password_problem("ana.lopez@example.test", context) or "")
    assert "too easy" in (password_problem("analopez12345678", context) or "")
    assert "too easy" in (password_problem("ana.lopez1234567", context) or "")
    assert "too easy" in (password_problem("AnaLopezAnaLopez", context) or "")
    assert "too easy" in (password_problem("countersign123456") or "")
    assert password_problem(PASSWORD, context) is None


def test_the_demo_logins_satisfy_the_rules():
    people = [*STAFF, ("reviewer01@countersign.test", "Reviewer 01", "frontline")]
    for email, name, _role in people:
        assert password_problem(DEMO_PASSWORD, context_words(email, name)) is None, email


def test_the_blocklist_is_the_pinned_packages_not_ours():
    from importlib.metadata import version

    assert version("zxcvbn") == "4.5.0"


def test_checking_the_longest_password_stays_fast():
    started = time.perf_counter()
    password_problem("Kq9!zL2@pW4#nR7$" * (MAX_LENGTH // 16))
    assert time.perf_counter() - started < 1.0


def test_passwords_are_compared_in_normalised_form():
    # The same password typed with full-width letters (some keyboards and IMEs) still matches.
    stored = hash_password("lantern harbour quietly")
    assert verify_password(stored, "ｌａｎｔｅｒｎ ｈａｒｂｏｕｒ ｑｕｉｅｔｌｙ")
    assert not verify_password(stored, "lantern harbour quietlY")
