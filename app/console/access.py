"""Who may do what in the console.

- **researcher**: sees and acts on the trials they are a member of (load, start, pause, resume,
  close, kiosks, monitoring); an unplanned interim look with a reason; results after close.
- **evaluator**: reads every trial and its monitoring; results and exports only after close.
- **admin**: accounts, memberships, kiosks of every trial, the audit log; reads every trial and
  its monitoring, never its results.

Everything else is 403; a visitor who is not signed in is sent to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from app.db import get_connection
from experiments import store
from experiments.store.users import Role, is_member

F = TypeVar("F", bound=Callable[..., Any])


class Can(StrEnum):
    """What a page does with a trial."""

    VIEW = "view"  # trial page, monitoring
    ACT = "act"  # lifecycle steps, loading versions, interim looks
    KIOSKS = "kiosks"  # list, add, switch, revoke, replace
    RESULTS = "results"  # report and export, after close


def roles(*allowed: Role) -> Callable[[F], F]:
    """Sign-in required, and one of ``allowed`` roles (else 403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        return login_required(checked)  # type: ignore[return-value]

    return decorate


def allowed(record: store.TrialRecord, can: Can) -> bool:
    """Whether the signed-in account may ``can`` on this trial."""
    user = current_user.account
    if user.role is Role.ADMIN:
        return can in (Can.VIEW, Can.KIOSKS)
    if user.role is Role.EVALUATOR:
        return can is Can.VIEW or (can is Can.RESULTS and record.status == "closed")
    if not is_member(get_connection(), record.id, user):
        return False
    return can is not Can.RESULTS or record.status == "closed"


def trial_for(trial_id: str, can: Can) -> store.TrialRecord:
    """The trial's row if the signed-in account may ``can`` on it; 404 when it is not loaded,
    403 when the account may not."""
    record = store.read_trial(get_connection(), trial_id)
    if record is None:
        abort(404)
    if not allowed(record, can):
        abort(403)
    return record
