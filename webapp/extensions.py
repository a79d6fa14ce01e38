"""Extensions, created unbound and attached in create_app."""

from collections.abc import Callable, Iterator

from flask import g
from flask_sqlalchemy_lite import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

db = SQLAlchemy(session_options={"expire_on_commit": False})
csrf = CSRFProtect()


def analytics_engine() -> Engine:
    """The replica's engine when ANALYTICS_DATABASE_URL is set, else the primary's."""
    return db.engines.get("analytics") or db.engine


def analytics_session() -> Session:
    """The session for read-only analytics: on the replica when ANALYTICS_DATABASE_URL is set.

    A replica lags the primary by its replication delay, so only pages that read aggregates use
    it; a page shown right after a change reads the primary, so people see what they just did.
    Without a replica this is the request's ordinary session.
    """
    if "analytics" not in db.engines:
        return db.session
    if "analytics_session" not in g:
        g.analytics_session = new_analytics_session()
    return g.analytics_session


def new_analytics_session() -> Session:
    """A session of its own on the replica (or the primary), for work outside a request."""
    return db.sessionmaker(bind=analytics_engine())


def streamed(engine: Engine, produce: Callable[[Session], Iterator[bytes]]) -> Iterator[bytes]:
    """A response body read through a session of its own, closed however the stream ends."""
    with Session(engine) as session:
        yield from produce(session)


def close_analytics_session(_exc: BaseException | None = None) -> None:
    """End the request's replica session (registered as an app-context teardown)."""
    session = g.pop("analytics_session", None)
    if session is not None:
        session.close()
