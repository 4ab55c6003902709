"""Interface names for the trial vocabulary: nudge elements, their strength, what is stored.

Shown on the "why am I seeing this?" page (which version a visitor saw and what the others
were, D10 in docs/ethics.md#disclosure) and in the public register. Translated through the
Babel catalogues.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

ELEMENT_LABELS: dict[str, LazyString] = {
    "control": _l("plain information (the comparison version)"),
    "gain_frame": _l("what you can gain"),
    "loss_frame": _l("what you could miss"),
    "messenger": _l("told by a person, with their role"),
    "local_norm": _l("what others at this location did"),
    "national_norm": _l("what others in the country did"),
    "reciprocity": _l("helping others in return"),
    "salience": _l("the contact option made easy to see"),
    "affect": _l("emotional images"),
    "commitment": _l("a promise to act"),
    "ego": _l("an appeal to self-image"),
    "priming": _l("subtle cues"),
    "incentive": _l("a reward"),
    "default": _l("a pre-selected choice"),
    "opt_out": _l("a choice made for you unless you say no"),
    "forced_choice": _l("a choice you must make"),
}

STRENGTH_LABELS: dict[str, LazyString] = {
    "none": _l("none"),
    "weak": _l("weak"),
    "moderate": _l("moderate"),
    "strong": _l("strong"),
    "strongest": _l("strongest"),
}

STATUS_LABELS: dict[str, LazyString] = {
    "draft": _l("not started"),
    "running": _l("running"),
    "paused": _l("paused"),
    "closed": _l("closed"),
    # statuses of earlier versions (migration 0003 renames them to draft and closed)
    "loaded": _l("not started"),
    "stopped": _l("stopped"),
}

#: What the kiosk stores about a visit (docs/ethics.md#what-the-kiosk-stores).
STORED: tuple[LazyString, ...] = (
    _l("a random visit number that is not linked to you"),
    _l("the study, its version, this location and this kiosk"),
    _l("the language you chose and when the visit started"),
    _l("which version of the information you were shown, and how it was chosen"),
    _l("which buttons you tapped (not what you read or looked at), and when"),
)

#: What it never stores.
NEVER_STORED: tuple[LazyString, ...] = (
    _l("your name, case or file number, or date of birth"),
    _l("your nationality, or which country you looked at"),
    _l("your IP address, device details or fingerprints"),
    _l("cookies beyond this visit"),
    _l("photos, sound, location data or anything you type"),
)
