"""Participant flow (CONSORT style): randomized → exposed → opted out → analysed, per arm.

Modified intention to treat (opt-outs excluded): every randomized visit is analysed in its
randomized arm whether or not the material was shown, except visits that opted out. An opt-out
withdraws the visitor's consent and deletes the visit's outcome events (``docs/ethics.md``,
"Opt-out"), so those visits remain only as a count in the flow and are excluded from every
outcome analysis. Because they are removed after randomization, this is a *modified*
intention-to-treat analysis, not a full one: differential opt-out between arms can bias it
(``analysis.checks`` tests for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.counts import Counts

if TYPE_CHECKING:
    from experiments.store import Pause


@dataclass(frozen=True)
class ArmFlow:
    """Flow numbers of one arm (or of all arms together, ``arm == "all"``)."""

    arm: str
    randomized: int
    exposed: int
    opted_out: int

    @property
    def not_exposed(self) -> int:
        return self.randomized - self.exposed

    @property
    def analysed(self) -> int:
        return self.randomized - self.opted_out

    def to_dict(self) -> dict[str, object]:
        return {
            "arm": self.arm,
            "randomized": self.randomized,
            "exposed": self.exposed,
            "not_exposed": self.not_exposed,
            "opted_out": self.opted_out,
            "analysed": self.analysed,
        }


@dataclass(frozen=True)
class Flow:
    """The participant flow of a trial; ``not_randomized`` visits lack an assignment.

    ``pauses`` are the times the trial was paused: kiosks randomized nobody and stored nothing
    for the trial then (a visit under way when the pause began keeps only what it logged
    before it, and its opt-out), so no visit of the flow starts inside one."""

    arms: tuple[ArmFlow, ...]
    not_randomized: int = 0
    pauses: tuple[Pause, ...] = ()

    @property
    def total(self) -> ArmFlow:
        """All arms together (``arm == "all"``)."""
        return ArmFlow(
            "all",
            sum(a.randomized for a in self.arms),
            sum(a.exposed for a in self.arms),
            sum(a.opted_out for a in self.arms),
        )

    def arm(self, arm_id: str) -> ArmFlow:
        """The flow of one arm."""
        return next(a for a in self.arms if a.arm == arm_id)

    def to_dict(self) -> dict[str, object]:
        return {
            "arms": [a.to_dict() for a in self.arms],
            "total": self.total.to_dict(),
            "not_randomized": self.not_randomized,
            "pauses": [
                {
                    "paused_at": pause.paused_at.isoformat(),
                    "resumed_at": pause.resumed_at.isoformat() if pause.resumed_at else None,
                }
                for pause in self.pauses
            ],
        }


def participant_flow(
    counts: Counts, arms: Sequence[str], not_randomized: int = 0, pauses: Sequence[Pause] = ()
) -> Flow:
    """Flow per arm in the given order; arms without any visit appear with zeros."""
    by_arm = counts.by("arm")
    flows = []
    for arm in arms:
        row = by_arm.loc[arm] if arm in by_arm.index else None
        flows.append(
            ArmFlow(
                arm,
                int(row["n"]) if row is not None else 0,
                int(row["exposed"]) if row is not None else 0,
                int(row["opted_out"]) if row is not None else 0,
            )
        )
    return Flow(tuple(flows), not_randomized, tuple(pauses))
