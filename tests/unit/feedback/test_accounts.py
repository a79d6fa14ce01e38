"""Account services: sign-in throttling per (account, address), session generations, tokens."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from feedback.accounts import login, throttle, tokens
from feedback.accounts import services as accounts
from feedback.accounts.security import hash_password
from feedback.accounts.throttle import LoginThrottling
from feedback.db import sqlite_write_intent, utcnow
from feedback.errors import Conflict, PermissionDenied, TooManyAttempts, ValidationFailed
from feedback.models import ROLES, ApiToken, AuditEvent, LoginThrottle, User
from tests.factories import PASSWORD, TEST_ACTOR, make_user

ATTACKER = "203.0.113.7"
OWNER = "198.51.100.1"


def pair(session, email: str, address: str) -> LoginThrottle:
    """The throttle row of one (account, address), fresh from the database."""
    session.rollback()
    row = session.get(LoginThrottle, (email, address), populate_existing=True)
    assert row is not None
    return row


def let_the_wait_pass(session) -> None:
    """Move every pair's allowed time into the past, as if the delay had been waited out."""
    session.rollback()
    session.execute(update(LoginThrottle).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_delays_double_after_the_free_failures_up_to_the_cap(session):
    user = make_user(session)
    delays = []
    for _ in range(12):
        assert login.authenticate(session, email=user.email, password="guess", address=ATTACKER) is None
        row = pair(session, user.email, ATTACKER)
        waits = row.next_attempt_at is not None
        delays.append((row.next_attempt_at - row.last_failed_at).total_seconds() if waits else 0)
        let_the_wait_pass(session)
    assert delays == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]  # a free failure sets no wait at all


def test_a_waiting_pair_is_refused_without_a_password_check_or_a_count(session):
    user = make_user(session)
    for _ in range(5):
        login.authenticate(session, email=user.email, password="guess", address=ATTACKER)
    audited = session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(TooManyAttempts) as refused:
        login.authenticate(session, email=user.email, password=PASSWORD, address=ATTACKER)
    assert 29 <= refused.value.retry_after <= 30
    assert pair(session, user.email, ATTACKER).failures == 5
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audited
    # The owner, elsewhere, is not slowed down at all.
    assert login.authenticate(session, email=user.email, password=PASSWORD, address=OWNER).id == user.id


def test_unknown_accounts_are_throttled_alike(session):
    for _ in range(5):
        assert login.authenticate(session, email="Nobody@Example.test", password="x", address=ATTACKER) is None
    with pytest.raises(TooManyAttempts):
        login.authenticate(session, email="nobody@example.test", password="x", address=ATTACKER)


def test_an_e_mail_with_a_nul_is_a_plain_failure_in_the_service_too(session):
    assert login.authenticate(session, email="nul\x00@example.test", password="x", address=ATTACKER) is None
    assert pair(session, "nul\ufffd@example.test", ATTACKER).failures == 1


def test_a_success_clears_the_pair_and_marks_the_address_as_the_owners(session):
    user = make_user(session)
    for _ in range(4):
        login.authenticate(session, email=user.email, password="guess", address=OWNER)
    assert login.authenticate(session, email=user.email, password=PASSWORD, address=OWNER) is not None
    row = pair(session, user.email, OWNER)
    assert row.failures == 0 and row.next_attempt_at is None and row.succeeded_at is not None


def test_many_addresses_meet_the_account_cap_but_the_owners_address_does_not(session):
    user = make_user(session)
    throttling = LoginThrottling(free_failures=3, account_failures=6)
    assert login.authenticate(session, email=user.email, password=PASSWORD, address=OWNER, throttling=throttling)
    for n in range(3):  # each attacker address stays under its own free failures
        for _ in range(2):
            address = f"203.0.113.{n}"
            assert not login.authenticate(
                session, email=user.email, password="guess", address=address, throttling=throttling
            )
    with pytest.raises(TooManyAttempts) as refused:
        login.authenticate(session, email=user.email, password=PASSWORD, address="203.0.113.99", throttling=throttling)
    assert 29 <= refused.value.retry_after <= 30
    signed_in = login.authenticate(session, email=user.email, password=PASSWORD, address=OWNER, throttling=throttling)
    assert signed_in is not None and signed_in.id == user.id


def test_one_address_spraying_many_accounts_meets_the_address_cap_but_not_on_its_own_account(session):
    """Password spraying: a few guesses on each of many accounts, each pair under its free failures."""
    users = [make_user(session) for _ in range(4)]
    mine = make_user(session)
    throttling = LoginThrottling(free_failures=3, account_failures=100, address_failures=6)
    assert login.authenticate(session, email=mine.email, password=PASSWORD, address=ATTACKER, throttling=throttling)
    for user in users[:3]:
        for _ in range(2):
            assert not login.authenticate(
                session, email=user.email, password="Spring2026!", address=ATTACKER, throttling=throttling
            )
    # Six failures from the address: the fourth account is refused before its password is checked.
    with pytest.raises(TooManyAttempts) as refused:
        login.authenticate(session, email=users[3].email, password=PASSWORD, address=ATTACKER, throttling=throttling)
    assert 29 <= refused.value.retry_after <= 30
    with pytest.raises(TooManyAttempts):  # an address-wide wait, whichever account it names next
        login.authenticate(session, email="nobody@example.test", password="x", address=ATTACKER, throttling=throttling)
    # The account this address has signed in to stays open to it, and the other accounts to their owners.
    again = login.authenticate(session, email=mine.email, password=PASSWORD, address=ATTACKER, throttling=throttling)
    assert again is not None and again.id == mine.id
    assert login.authenticate(session, email=users[3].email, password=PASSWORD, address=OWNER, throttling=throttling)
    # Without an address (a command, a test) nothing is lumped together.
    for user in users[:3]:
        for _ in range(2):
            login.authenticate(session, email=user.email, password="guess", address=None, throttling=throttling)
    assert login.authenticate(session, email=users[3].email, password=PASSWORD, address=None, throttling=throttling)


def test_a_pairs_count_starts_afresh_after_a_quiet_day(session):
    user = make_user(session)
    for _ in range(9):
        login.authenticate(session, email=user.email, password="guess", address=ATTACKER)
        let_the_wait_pass(session)
    long_ago = utcnow() - timedelta(days=2)
    session.execute(update(LoginThrottle).values(last_failed_at=long_ago, next_attempt_at=long_ago))
    session.commit()
    login.authenticate(session, email=user.email, password="guess", address=ATTACKER)
    assert pair(session, user.email, ATTACKER).failures == 1


def test_parallel_guesses_from_one_address_meet_one_count(app, session):
    """Each attempt is counted before its password check, so a burst gets no more tries than a queue."""
    from webapp.extensions import db

    user = make_user(session)
    throttling = LoginThrottling(free_failures=3, first_delay=timedelta(hours=1))
    with app.app_context():
        sessions = [db.sessionmaker() for _ in range(8)]
    outcomes: list[str] = []

    def guess(own) -> None:
        sqlite_write_intent.set(True)  # as for the sign-in POST, on its own thread
        try:
            result = login.authenticate(
                own, email=user.email, password="guess", address=ATTACKER, throttling=throttling
            )
            outcomes.append("checked" if result is None else "signed in")
        except TooManyAttempts:
            outcomes.append("refused")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below, not lost with the thread
            outcomes.append(f"failed: {exc!r}")
        finally:
            own.close()

    threads = [threading.Thread(target=guess, args=(own,)) for own in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["checked"] * 3 + ["refused"] * 5, repr(outcomes)
    assert pair(session, user.email, ATTACKER).failures == 3


def test_stale_pairs_are_forgotten_but_the_owners_are_kept(session):
    user = make_user(session)
    login.authenticate(session, email=user.email, password=PASSWORD, address=OWNER)
    login.authenticate(session, email="ghost@example.test", password="x", address=ATTACKER)
    throttle.forget_stale(session, utcnow() + timedelta(seconds=1))
    session.commit()
    left = session.execute(select(LoginThrottle.account, LoginThrottle.address)).all()
    assert left == [(user.email, OWNER)]


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(lambda s, u: login.record_logout(s, u), id="logout"),
        pytest.param(lambda s, u: accounts.set_role(s, TEST_ACTOR, email=u.email, role="analyst"), id="role"),
        pytest.param(
            lambda s, u: accounts.set_password(s, TEST_ACTOR, email=u.email, password="lantern harbour quietly"),
            id="password",
        ),
        pytest.param(lambda s, u: accounts.deactivate_user(s, TEST_ACTOR, email=u.email), id="deactivation"),
    ],
)
def test_each_account_change_ends_the_users_sessions(session, end):
    user = make_user(session)
    other = make_user(session)
    end(session, user)
    session.expire_all()
    assert session.get(User, user.id).session_generation == 1
    assert session.get(User, other.id).session_generation == 0


def test_no_change_no_session_end_and_no_audit(session):
    user = make_user(session, "analyst")
    audited = session.scalar(select(func.count()).select_from(AuditEvent))
    accounts.set_role(session, TEST_ACTOR, email=user.email, role="analyst")
    accounts.reactivate_user(session, TEST_ACTOR, email=user.email)
    session.expire_all()
    assert session.get(User, user.id).session_generation == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audited


def test_a_refused_role_or_password_changes_nothing(session):
    user = make_user(session)
    with pytest.raises(ValidationFailed) as bad_role:
        accounts.set_role(session, TEST_ACTOR, email=user.email, role="boss")
    assert set(bad_role.value.fields) == {"role"}
    with pytest.raises(ValidationFailed) as weak:
        accounts.change_password(session, user, current_password=PASSWORD, new_password="qwertyuiopasdfgh")
    assert set(weak.value.fields) == {"new_password"}
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored.role == "frontline" and stored.session_generation == 0
    assert login.authenticate(session, email=user.email, password=PASSWORD) is not None


def test_deactivation_revokes_every_live_token_and_audits_which(session):
    user = make_user(session)
    for name in ("ci", "notebook"):
        tokens.create_token(session, TEST_ACTOR, email=user.email, name=name)
    accounts.deactivate_user(session, TEST_ACTOR, email=user.email)
    assert session.scalar(select(func.count()).where(ApiToken.revoked_at.is_(None))) == 0
    details = session.scalar(select(AuditEvent.details).where(AuditEvent.action == "user.deactivated"))
    assert details.count("cs_") == 2
    with pytest.raises(Conflict):
        tokens.create_token(session, TEST_ACTOR, email=user.email)


def test_only_an_administrator_manages_people_and_tokens(session):
    """The services check the role themselves: a page or command that forgot to would still be refused."""
    admin, analyst = make_user(session, "admin"), make_user(session, "analyst")
    target = make_user(session)
    as_analyst = accounts.actor_of(analyst)
    attempts = [
        lambda: accounts.create_user(
            session, as_analyst, email="new@example.test", role="frontline", password=PASSWORD
        ),
        lambda: accounts.set_role(session, as_analyst, email=target.email, role="admin"),
        lambda: accounts.deactivate_user(session, as_analyst, email=target.email),
        lambda: accounts.reactivate_user(session, as_analyst, email=target.email),
        lambda: accounts.end_user_sessions(session, as_analyst, email=target.email),
        lambda: accounts.set_password(session, as_analyst, email=target.email, password=PASSWORD + "x"),
        lambda: tokens.create_token(session, as_analyst, email=analyst.email),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    assert session.get(User, target.id).role == "frontline" and session.get(User, target.id).active
    assert accounts.set_role(session, accounts.actor_of(admin), email=target.email, role="analyst").role == "analyst"


def test_imported_accounts_keep_their_hash_all_or_nothing(session):
    admin_user = make_user(session, "admin", email="root@example.test")
    admin = accounts.actor_of(admin_user)
    existing = make_user(session, email="taken@example.test")
    good = hash_password("a long imported passphrase")
    bad = [
        accounts.ImportedUser("ann@example.test", "Ann", "frontline", good),
        accounts.ImportedUser("ANN@example.test ", "Ann again", "frontline", good),
        accounts.ImportedUser("bob", "Bob", "pilot", "plain-text"),
    ]
    with pytest.raises(ValidationFailed) as invalid:
        accounts.import_users(session, admin, people=bad)
    assert invalid.value.fields == {
        "[1].email": "repeats [0]",
        "[2].email": "must be an email address",
        "[2].role": "must be one of " + ", ".join(ROLES),
        "[2].password_hash": "must be an argon2id hash",
    }
    with pytest.raises(Conflict):
        accounts.import_users(
            session, admin, people=[*bad[:1], accounts.ImportedUser(existing.email, "", "admin", good)]
        )
    assert session.scalar(select(func.count()).select_from(User)) == 2  # nothing half-created
    ann, cy = accounts.import_users(
        session, admin, people=[bad[0], accounts.ImportedUser("cy@example.test", "", "analyst", good)]
    )
    assert login.authenticate(session, email="ANN@example.test", password="a long imported passphrase").id == ann.id
    assert cy.name == "cy" and cy.role == "analyst"
    created = session.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == "user.created")).all()
    assert sorted(created) == sorted(str(u.id) for u in (admin_user, existing, ann, cy))  # one event each
