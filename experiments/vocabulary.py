"""Closed vocabularies of a trial: nudge elements, their strength, languages and reserved events.

The element list is MINDSPACE-based (Dolan et al. 2010) plus the choice-architecture
elements that a high-sensitivity trial refuses (see ``docs/ethics.md#nudge-elements``).
"""

from __future__ import annotations

from typing import Literal, get_args

Element = Literal[
    "control",
    "gain_frame",
    "loss_frame",
    "messenger",
    "local_norm",
    "national_norm",
    "reciprocity",
    "salience",
    "affect",
    "commitment",
    "ego",
    "priming",
    "incentive",
    "default",
    "opt_out",
    "forced_choice",
]
ELEMENTS: tuple[str, ...] = get_args(Element)

#: Strength on the ladder of the organ-donation debate: information framing is the weakest
#: steering, forced choice is stronger and an opt-out default the strongest.
Strength = Literal["none", "weak", "moderate", "strong", "strongest"]
STRENGTH: dict[str, Strength] = {
    "control": "none",
    "gain_frame": "weak",
    "loss_frame": "weak",
    "messenger": "weak",
    "local_norm": "weak",
    "national_norm": "weak",
    "salience": "weak",
    "priming": "moderate",
    "affect": "moderate",
    "reciprocity": "moderate",
    "commitment": "moderate",
    "ego": "moderate",
    "incentive": "moderate",
    "forced_choice": "strong",
    "default": "strongest",
    "opt_out": "strongest",
}

#: Elements a high-sensitivity trial (the default; every return trial) may not use.
REFUSED_IN_HIGH_SENSITIVITY: frozenset[str] = frozenset(
    {
        "default",
        "opt_out",
        "forced_choice",
        "affect",
        "priming",
        "ego",
        "commitment",
        "reciprocity",
        "incentive",
    }
)
#: The choice-architecture elements refused even when named in the issue tracker as the hard core.
CHOICE_ARCHITECTURE: frozenset[str] = frozenset({"default", "opt_out", "forced_choice"})
NORM_ELEMENTS: frozenset[str] = frozenset({"local_norm", "national_norm"})

#: Languages a trial may declare, each named in itself (shown on the kiosk's welcome screen).
LANGUAGE_NAMES: dict[str, str] = {
    "am": "አማርኛ",
    "ar": "العربية",
    "de": "Deutsch",
    "en": "English",
    "es": "Español",
    "fa": "فارسی",
    "fr": "Français",
    "he": "עברית",
    "hy": "Հայերեն",
    "ka": "ქართული",
    "ku": "Kurdî",
    "nl": "Nederlands",
    "ps": "پښتو",
    "pt": "Português",
    "ru": "Русский",
    "so": "Soomaali",
    "sq": "Shqip",
    "ti": "ትግርኛ",
    "tr": "Türkçe",
    "uk": "Українська",
    "ur": "اردو",
    "zh": "中文",
}
RIGHT_TO_LEFT: frozenset[str] = frozenset({"ar", "fa", "he", "ur", "ps"})


def text_direction(language: str) -> Literal["rtl", "ltr"]:
    """Return ``"rtl"`` for right-to-left languages, else ``"ltr"``."""
    return "rtl" if language in RIGHT_TO_LEFT else "ltr"


#: Event types the platform itself logs; a trial's outcomes may not reuse them.
SYSTEM_EVENTS: frozenset[str] = frozenset(
    {"exposure", "opt_out", "finish", "timeout", "language_switch"}
)
