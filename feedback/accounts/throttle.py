"""Throttling failed password checks, per account and per client address, in the database."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.errors import TooManyAttempts
from feedback.models import LoginThrottle


@dataclass(frozen=True)
class LoginThrottling:
    """Growing delays between failed sign-ins, per (account, client address).

    Each pair gets `free_failures` tries, then waits `first_delay`, doubling with each further
    failure up to `max_delay`. Someone guessing from one address therefore never slows the
    account's owner down elsewhere. NIST caps guesses on one account at 100 however many addresses
    try: past `account_failures` failures from addresses that never signed in to the account, those
    addresses share one growing delay too, while the addresses the owner has used stay free.
    One address guessing a few passwords on each of many accounts (password spraying) is capped
    the same way: past `address_failures` failures on accounts it never signed in to, it waits
    before trying any of them, while the accounts it has signed in to stay free from it.
    A pair's count starts afresh after `forget_after` without a failure.
    """

    free_failures: int = 5
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(minutes=15)
    account_failures: int = 100
    address_failures: int = 50
    forget_after: timedelta = timedelta(days=1)

    def delay(self, failures: int, free: int) -> timedelta:
        """The wait after `failures` failures when the first `free` cost nothing."""
        if failures < free:
            return timedelta(0)
        doublings: int = 2 ** min(failures - free, 32)
        return min(self.max_delay, self.first_delay * doublings)


def _throttle_insert(session: Session, account: str, address: str) -> Any:  # the dialect's INSERT statement
    """INSERT of an empty throttle row that does nothing when the pair already has one."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(LoginThrottle).values(account=account, address=address, failures=0).on_conflict_do_nothing()


def reserve_attempt(session: Session, account: str, address: str | None, throttling: LoginThrottling) -> None:
    """Count one attempt for (account, address) and commit, or raise TooManyAttempts while it must wait."""
    address = (address or "")[:64]
    session.execute(_throttle_insert(session, account, address))
    # Locked until commit on PostgreSQL; SQLite's writers take turns anyway.
    row = session.get(LoginThrottle, (account, address), with_for_update=True, populate_existing=True)
    assert row is not None
    now = utcnow()  # read once the row is ours: an attempt that waited for the lock is judged as of now
    if row.last_failed_at is not None and row.last_failed_at < now - throttling.forget_after:
        row.failures, row.next_attempt_at = 0, None
    waits = [row.next_attempt_at]
    if row.succeeded_at is None:
        waits.append(_account_allowed_at(session, account, now, throttling))
        if address:  # an unknown address ("") is nobody's in particular: it is not lumped together
            waits.append(_address_allowed_at(session, address, now, throttling))
    allowed_at = max((w for w in waits if w is not None), default=None)
    if allowed_at is not None and allowed_at > now:
        session.rollback()
        wait = max(1, int((allowed_at - now).total_seconds() + 0.999))
        raise TooManyAttempts(f"Too many failed sign-ins. Try again in {_readable(wait)}.", retry_after=wait)
    row.failures += 1
    row.last_failed_at = now
    delay = throttling.delay(row.failures, throttling.free_failures)
    row.next_attempt_at = now + delay if delay else None  # a free failure sets no wait at all
    if random.random() < 0.01:
        forget_stale(session, now - throttling.forget_after)
    session.commit()


def _account_allowed_at(session: Session, account: str, now: datetime, throttling: LoginThrottling) -> datetime | None:
    """When addresses that never signed in to the account may try again, past its total failure cap."""
    total, latest = session.execute(
        select(func.coalesce(func.sum(LoginThrottle.failures), 0), func.max(LoginThrottle.last_failed_at)).where(
            LoginThrottle.account == account,
            LoginThrottle.succeeded_at.is_(None),
            LoginThrottle.last_failed_at >= now - throttling.forget_after,
        )
    ).one()
    if latest is None or total < throttling.account_failures:
        return None
    return latest + throttling.delay(total, throttling.account_failures)


def _address_allowed_at(session: Session, address: str, now: datetime, throttling: LoginThrottling) -> datetime | None:
    """When this address may try accounts it never signed in to again, past its total failure cap."""
    total, latest = session.execute(
        select(func.coalesce(func.sum(LoginThrottle.failures), 0), func.max(LoginThrottle.last_failed_at)).where(
            LoginThrottle.address == address,
            LoginThrottle.succeeded_at.is_(None),
            LoginThrottle.last_failed_at >= now - throttling.forget_after,
        )
    ).one()
    if latest is None or total < throttling.address_failures:
        return None
    return latest + throttling.delay(total, throttling.address_failures)


def clear_failures(session: Session, account: str, address: str | None) -> None:
    """A correct password from this address: its count restarts and it counts as the owner's."""
    session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.account == account, LoginThrottle.address == (address or "")[:64])
        .values(failures=0, next_attempt_at=None, succeeded_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def forget_stale(session: Session, before: datetime) -> None:
    """Drop pairs that have not failed for a long time and never signed in (the table stays small)."""
    session.execute(
        delete(LoginThrottle)
        .where(
            LoginThrottle.succeeded_at.is_(None),
            or_(LoginThrottle.last_failed_at.is_(None), LoginThrottle.last_failed_at < before),
        )
        .execution_options(synchronize_session=False)
    )


def _readable(seconds: int) -> str:
    """Seconds as a rough, readable wait."""
    return f"{seconds} seconds" if seconds < 90 else f"{round(seconds / 60)} minutes"
