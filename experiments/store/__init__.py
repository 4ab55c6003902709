"""The event log's owner: every read and write of trials, kiosks, visits, events and looks.

The kiosk (``app``), the analysis, the simulator and the command line all go through these
functions, so a simulated trial exercises exactly the code a real one does and no other package
writes SQL against the event log. Every function takes an open SQLAlchemy ``Connection`` inside
a transaction owned by the caller.

- :mod:`~experiments.store.trials`: the typed :class:`TrialRecord`, loading, lifecycle, versions
- :mod:`~experiments.store.history`: :class:`TrialHistory`, what a report needs besides counts
- :mod:`~experiments.store.looks`: looks at the results
- :mod:`~experiments.store.kiosks`: kiosks and their tokens
- :mod:`~experiments.store.visits`: randomized visits
- :mod:`~experiments.store.events`: idempotent events and the opt-out rule
"""

from experiments.store.errors import (
    IdempotencyConflict,
    RecordingError,
    StoredTrialError,
    UndeclaredEvent,
    UnknownTrial,
    UnknownVisit,
)
from experiments.store.events import (
    EventSpec,
    EventStatus,
    EventVisit,
    allowed_events,
    lock_kiosk_visits,
    record_event,
    record_events,
    stored_events,
)
from experiments.store.history import TrialHistory, read_history
from experiments.store.kiosks import (
    Kiosk,
    KioskError,
    active_kiosk_counts,
    find_kiosk,
    kiosk_path,
    register_kiosk,
    token_hash,
)
from experiments.store.looks import look_times, record_look
from experiments.store.sql import aware, utcnow
from experiments.store.trials import (
    TrialRecord,
    TrialStatus,
    current_trial,
    list_trials,
    load_trial,
    parse_trial,
    read_trial,
    require_trial,
    source_version,
    start_trial,
    stop_trial,
    trial_at_version,
    version_source,
    version_sources,
)
from experiments.store.visits import (
    AssignedVisit,
    StartedVisit,
    VisitSpec,
    assigned_visit,
    start_visit,
    start_visits,
)

__all__ = [
    "AssignedVisit",
    "EventSpec",
    "EventStatus",
    "EventVisit",
    "IdempotencyConflict",
    "Kiosk",
    "KioskError",
    "RecordingError",
    "StartedVisit",
    "StoredTrialError",
    "TrialHistory",
    "TrialRecord",
    "TrialStatus",
    "UndeclaredEvent",
    "UnknownTrial",
    "UnknownVisit",
    "VisitSpec",
    "active_kiosk_counts",
    "allowed_events",
    "assigned_visit",
    "aware",
    "current_trial",
    "find_kiosk",
    "kiosk_path",
    "list_trials",
    "load_trial",
    "lock_kiosk_visits",
    "look_times",
    "parse_trial",
    "read_history",
    "read_trial",
    "record_event",
    "record_events",
    "record_look",
    "register_kiosk",
    "require_trial",
    "source_version",
    "start_trial",
    "start_visit",
    "start_visits",
    "stop_trial",
    "stored_events",
    "token_hash",
    "trial_at_version",
    "utcnow",
    "version_source",
    "version_sources",
]
