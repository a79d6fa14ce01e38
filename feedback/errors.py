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


class UnknownReference(NotFound):
    """A field names something that is not stored (a model, a version, a case, a person): 404 naming the field."""

    code = "unknown_reference"


class NotAllowedByConfiguration(Conflict):
    """A field holds a value the stored configuration does not allow (an action or reason code the model
    lacks, a person who may not own the model): 409 naming the field, as no schema can state it."""

    code = "not_allowed"


class RepeatedInRequest(Conflict):
    """The request contradicts itself: a value that must be unique in a list of objects is repeated
    (JSON Schema's uniqueItems compares whole objects, so only the server can say it): 409 naming the field."""

    code = "repeated_in_request"


class Problems:
    """Fields at fault, sorted by the kind of rule each breaks, raised as one error naming them all.

    A rule the schema states is a 422; a reference to nothing stored a 404; a value the stored
    configuration or the rest of the request rules out a 409. The first kind found sets the status.
    """

    def __init__(self) -> None:
        self.invalid: dict[str, str] = {}
        self.unknown: dict[str, str] = {}
        self.disallowed: dict[str, str] = {}
        self.repeated: dict[str, str] = {}

    def __bool__(self) -> bool:
        """True when any field is at fault."""
        return bool(self.fields)

    @property
    def fields(self) -> dict[str, str]:
        """Every field at fault, whatever the kind."""
        return {**self.repeated, **self.disallowed, **self.unknown, **self.invalid}

    def raise_any(self, message: str) -> None:
        """Raise the error for the most basic kind of fault found, naming every field at fault."""
        fields = self.fields
        if self.invalid:
            raise ValidationFailed(message, fields)
        if self.unknown:
            raise UnknownReference(message, fields)
        if self.disallowed:
            raise NotAllowedByConfiguration(message, fields)
        if self.repeated:
            raise RepeatedInRequest(message, fields)


# What a person typed broke a rule: a form re-renders with the error's status, naming the fields.
# Caught before NotFound, of which UnknownReference is one.
FIELD_FAULTS = (ValidationFailed, UnknownReference, NotAllowedByConfiguration, RepeatedInRequest)


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
