"""Domain errors raised by services; the web layers turn them into 4xx answers."""

from __future__ import annotations


class FeedbackError(Exception):
    """Base of every domain error: a code, a message, and the fields at fault."""

    code = "invalid"
    status = 400

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(FeedbackError):
    """Input broke a rule; `fields` maps each bad field (e.g. `[3].confidence`) to the problem."""

    code = "validation_failed"
    status = 422


class NotFound(FeedbackError):
    """The named object does not exist."""

    code = "not_found"
    status = 404


class Conflict(FeedbackError):
    """The request contradicts what is already stored."""

    code = "conflict"
    status = 409


class AlreadyDecided(Conflict):
    """Someone has already countersigned this case."""

    code = "already_decided"


class ClaimedByOther(Conflict):
    """Another reviewer holds the claim on this case."""

    code = "claimed_by_other"


class NotShown(Conflict):
    """A decision from the review screen names a case (or a claim on it) other than the one shown."""

    code = "not_shown"


class DecisionFinal(Conflict):
    """The decision can no longer be undone."""

    code = "decision_final"


class PermissionDenied(FeedbackError):
    """The user's role does not allow this."""

    code = "forbidden"
    status = 403


class TooManyAttempts(FeedbackError):
    """Too many failed sign-ins; `retry_after` says in how many seconds to try again."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
