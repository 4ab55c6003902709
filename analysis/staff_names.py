"""Staff pseudonyms for exports and reports: "staff 1 (researcher)" instead of an e-mail address.

The audit log and the amendments name the staff who changed a trial (a console account's e-mail
address, or the command line's login name). Exports and reports travel further than the team,
so they name staff by a pseudonym that is stable within one trial: staff are numbered in the
order they first appear in the trial's audit log (then its amendments), and keep their role
(``researcher``, ``evaluator``, ``admin``; ``command line`` for a name without a console
account). The same trial therefore gives the same pseudonyms in its export and its report. Only
the console's audit page (admins) shows the e-mail addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from experiments.store.amendments import Amendment
from experiments.store.audit import AuditEntry
from experiments.store.history import TrialHistory
from experiments.store.users import find_user

#: Audit actions whose ``target`` is an account (its e-mail address).
ACCOUNT_TARGETS = frozenset({"member.add", "member.remove"})
#: The role shown for a name without a console account.
NO_ACCOUNT = "command line"


@dataclass(frozen=True)
class StaffNames:
    """The pseudonym of each staff identity of one trial."""

    names: Mapping[str, str]

    def __call__(self, identity: str) -> str:
        """The pseudonym of ``identity`` (an unknown identity is never shown as it is)."""
        return self.names.get(identity, "staff (unknown)")

    def entry(self, entry: AuditEntry) -> AuditEntry:
        """An audit entry with its actor, and an account as its target, pseudonymised."""
        target = entry.target
        if target is not None and entry.action in ACCOUNT_TARGETS:
            target = self(target)
        return replace(entry, actor=self(entry.actor), target=target)

    def history(self, record: TrialHistory) -> TrialHistory:
        """The trial's history with each amendment's author pseudonymised."""
        amendments = tuple(replace(a, actor=self(a.actor)) for a in record.amendments)
        return replace(record, amendments=amendments)


def _identities(entries: Iterable[AuditEntry], amendments: Iterable[Amendment]) -> list[str]:
    seen: dict[str, None] = {}
    for entry in entries:
        seen.setdefault(entry.actor)
        if entry.target is not None and entry.action in ACCOUNT_TARGETS:
            seen.setdefault(entry.target)
    for amendment in amendments:
        seen.setdefault(amendment.actor)
    return list(seen)


def staff_names(
    conn: Connection, entries: Iterable[AuditEntry], amendments: Iterable[Amendment] = ()
) -> StaffNames:
    """Pseudonyms for everyone named in ``entries`` (one trial's audit log, oldest first) and
    ``amendments``; roles are read from the accounts."""
    names = {}
    for number, identity in enumerate(_identities(entries, amendments), start=1):
        account = find_user(conn, identity)
        role = account.role.value if account is not None else NO_ACCOUNT
        names[identity] = f"staff {number} ({role})"
    return StaffNames(names)
