"""Amendments: versions of a trial file loaded after the trial started, with when, who and why.

A new version that changes the arms, the materials, the outcomes or the analysis plan needs a
reason (:func:`substantive_changes` says which of them changed); other changes (a contact, a
typo in the purpose) are recorded too, with a reason if one was given. The public register
shows the amendments and the report lists each as a deviation from the pre-registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from experiments.eventlog import trial_amendments
from experiments.model import Trial
from experiments.store.audit import Actor, audit
from experiments.store.sql import aware, utcnow

#: The parts of a trial whose change needs a reason, in the order they are named.
SUBSTANTIVE = ("arms", "materials", "outcomes", "analysis plan")


@dataclass(frozen=True)
class Amendment:
    """One amendment (times aware, UTC). ``changes`` names the parts that changed."""

    version: str
    previous_version: str
    amended_at: datetime
    changes: tuple[str, ...]
    reason: str | None
    actor: str
    interface: str

    @property
    def substantive(self) -> bool:
        """Whether arms, materials, outcomes or the analysis plan changed."""
        return any(change in SUBSTANTIVE for change in self.changes)

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "previous_version": self.previous_version,
            "amended_at": self.amended_at.isoformat(),
            "changes": list(self.changes),
            "reason": self.reason,
            "actor": self.actor,
            "interface": self.interface,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Amendment:
        moment = datetime.fromisoformat(str(data["amended_at"]))
        return cls(
            str(data["version"]),
            str(data["previous_version"]),
            aware(moment),  # type: ignore[arg-type]
            tuple(str(c) for c in data.get("changes") or ()),  # type: ignore[union-attr]
            None if data.get("reason") is None else str(data["reason"]),
            str(data["actor"]),
            str(data["interface"]),
        )


#: What an arm shows (its "materials"); the rest of an arm (id, element, control, weight) is
#: its design ("arms").
_SHOWN = frozenset({"material", "claims", "figure", "messenger", "images", "audio"})


def _arms(trial: Trial, shown: bool) -> list[dict[str, object]]:
    return [
        {k: v for k, v in arm.model_dump(mode="json").items() if (k in _SHOWN) == shown}
        for arm in trial.arms
    ]


def substantive_changes(before: Trial, after: Trial) -> tuple[str, ...]:
    """Which of :data:`SUBSTANTIVE` differ between two versions: the arms' design (ids,
    elements, weights), what they show (texts, claims, figures, messengers, images, audio),
    the outcomes, the analysis plan."""
    found = []
    if _arms(before, False) != _arms(after, False):
        found.append("arms")
    if _arms(before, True) != _arms(after, True):
        found.append("materials")
    if [o.model_dump(mode="json") for o in before.outcomes] != [
        o.model_dump(mode="json") for o in after.outcomes
    ]:
        found.append("outcomes")
    if before.analysis.model_dump(mode="json") != after.analysis.model_dump(mode="json"):
        found.append("analysis plan")
    return tuple(found)


def record_amendment(
    conn: Connection,
    trial_id: str,
    version: str,
    previous_version: str,
    changes: tuple[str, ...],
    reason: str | None,
    actor: Actor,
    now: datetime | None = None,
) -> Amendment:
    """Store an amendment and its audit entry."""
    now = now or utcnow()
    listed = ", ".join(changes) or "other"
    conn.execute(
        insert(trial_amendments).values(
            trial_id=trial_id,
            version=version,
            previous_version=previous_version,
            amended_at=now,
            changes=listed,
            reason=reason,
            actor=actor.name,
            interface=actor.interface,
        )
    )
    detail = f"version {version[:12]} replaces {previous_version[:12]}; changes: {listed}"
    if reason:
        detail += f"; reason: {reason}"
    audit(conn, actor, "trial.amend", trial_id=trial_id, target=version, detail=detail, at=now)
    parts = changes or ("other",)
    return Amendment(version, previous_version, now, parts, reason, actor.name, actor.interface)


def read_amendments(conn: Connection, trial_id: str) -> tuple[Amendment, ...]:
    """The trial's amendments, oldest first."""
    rows = conn.execute(
        select(trial_amendments)
        .where(trial_amendments.c.trial_id == trial_id)
        .order_by(trial_amendments.c.amended_at, trial_amendments.c.id)
    )
    return tuple(
        Amendment(
            row.version,
            row.previous_version,
            aware(row.amended_at),  # type: ignore[arg-type]
            tuple(part.strip() for part in row.changes.split(",")),
            row.reason,
            row.actor,
            row.interface,
        )
        for row in rows
    )
