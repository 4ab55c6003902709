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


def _design(trial: Trial) -> dict[str, object]:
    """The arms as a design: which arms, their element, control and weight, and how visitors
    are allocated to them (a change of randomization or blocks is a change of the arms)."""
    return {
        "arms": [(arm.id, arm.element, arm.control, arm.weight) for arm in trial.arms],
        "randomization": trial.randomization.model_dump(mode="json"),
    }


def _shown(trial: Trial, languages: set[str]) -> dict[str, object]:
    """What visitors see: every arm's material version in every language (one definition,
    :meth:`Trial.material_version`: texts, claims, messenger, the figure's values, images and
    narrations), and the disclosure's wording (its placeholders unfilled, so a new contact
    address is not a change of materials)."""
    versions = {
        f"{arm.id}/{language}": trial.material_version(arm.id, language)
        for arm in trial.arms
        for language in sorted(languages)
        if language in arm.material
    }
    disclosure = {
        language: text.model_dump(mode="json") for language, text in trial.disclosure.items()
    }
    return {"materials": versions, "disclosure": disclosure}


def substantive_changes(before: Trial, after: Trial) -> tuple[str, ...]:
    """Which of :data:`SUBSTANTIVE` differ between two versions: the arms' design (ids,
    elements, weights) or their allocation (randomization method, blocks, strata), what
    visitors see (material versions of every arm and language, the disclosure's wording), the
    outcomes, the analysis plan."""
    found = []
    if _design(before) != _design(after):
        found.append("arms")
    languages = set(before.languages) | set(after.languages)
    if _shown(before, languages) != _shown(after, languages):
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
