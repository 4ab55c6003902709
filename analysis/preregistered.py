"""The pre-registered (locked) trial next to the trial as analysed: what the analysis covers.

The analysis follows the locked version of the trial file: its outcomes come first (primary
first), then outcomes added later; its arms are kept even when the current file dropped them.
"""

from __future__ import annotations

from analysis.counts import OutcomeSpec
from experiments.load import load_text
from experiments.model import Arm, Trial
from experiments.store import TrialHistory


def preregistered_trial(history: TrialHistory, analysed: Trial) -> Trial:
    """The locked version of ``analysed`` if it is stored and parses, else ``analysed`` itself."""
    if history.locked_source:
        loaded = load_text(history.locked_source, "<locked version>")
        if loaded.trial is not None and loaded.trial.id == analysed.id:
            return loaded.trial
    return analysed


def outcome_specs(preregistered: Trial, analysed: Trial) -> list[OutcomeSpec]:
    """Pre-registered outcomes (primary first), then outcomes added later."""
    ordered = sorted(preregistered.outcomes, key=lambda o: not o.primary)
    specs = [OutcomeSpec(o.id, o.event) for o in ordered]
    known = {o.id for o in preregistered.outcomes}
    return specs + [OutcomeSpec(o.id, o.event) for o in analysed.outcomes if o.id not in known]


def arm_union(preregistered: Trial, analysed: Trial) -> list[Arm]:
    """The analysed trial's arms, then any pre-registered arm it dropped."""
    arms = list(analysed.arms)
    return arms + [arm for arm in preregistered.arms if arm.id not in {a.id for a in arms}]
