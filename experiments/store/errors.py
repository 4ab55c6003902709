"""What the event log refuses to write, as exceptions that name the offending input."""

from __future__ import annotations


class RecordingError(Exception):
    """A write the event log refuses; ``field`` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownTrial(RecordingError):
    """The trial is not loaded into this database."""


class UnknownVisit(RecordingError):
    """No visit with this id belongs to the trial."""


class UndeclaredEvent(RecordingError):
    """An event type the trial does not declare."""


class IdempotencyConflict(RecordingError):
    """An idempotency key already used for a different event."""


class StoredTrialError(Exception):
    """A stored trial version that can no longer be parsed (e.g. after a model change)."""
