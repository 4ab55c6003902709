"""Each design and ethics rule, tripped by a bad trial file, with the message users see."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.check import check_path, check_text
from experiments.rules import RULES, Settings
from tests.factories import SETTINGS, trial_dict, trial_yaml

Mutation = Callable[[dict[str, Any]], None]
EXAMPLE = Path("experiments/trials/tearoom-return-info.yaml")


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[int(last) if last.isdigit() else last]

    return mutate


def _add_arm(element: str, **extra: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        arm = {
            "id": element,
            "element": element,
            "material": {lang: {"title": "t", "body": "b"} for lang in ("en", "ar")},
        }
        arm.update(extra)
        data["arms"].append(arm)
        data["randomization"]["block_size"] = len(data["arms"]) * 2

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(data)

    return mutate


def _loss_frame(body: str) -> Mutation:
    """Add a loss-frame arm whose English body is ``body``."""
    return _add_arm(
        "loss_frame",
        material={"en": {"title": "Act now", "body": body}, "ar": {"title": "t", "body": "b"}},
    )


#: Alt text of an image in both languages of the base trial.
_ALT = {"en": "A tree", "ar": "شجرة"}

# (rule, mutation, severity, expected message fragment, expected field path)
CASES: list[tuple[str, Mutation, str, str, str]] = [
    (
        "one-control",
        _set("arms.1.control", True),
        "error",
        "exactly one arm must have 'control: true' (found control, gain)",
        "arms.1.control",
    ),
    (
        "one-control",
        _set("arms.0.control", False),
        "error",
        "exactly one arm must have 'control: true' (found none)",
        "arms",
    ),
    ("unique-ids", _set("arms.1.id", "control"), "error", "duplicate id 'control'", "arms.1.id"),
    (
        "unique-ids",
        _set("outcomes.1.event", "contact_requested"),
        "error",
        "event 'contact_requested' is already used by another outcome",
        "outcomes.1.event",
    ),
    (
        "positive-weights",
        _set("arms.1.weight", 0),
        "error",
        "arm 'gain': weight must be a positive integer (got 0)",
        "arms.1.weight",
    ),
    (
        "block-size",
        _set("randomization.block_size", 7),
        "error",
        "block_size 7 is not a multiple of 3 (the sum of the arms' weights); use e.g. 6",
        "randomization.block_size",
    ),
    (
        "block-size",
        _delete("randomization.block_size"),
        "error",
        "block randomization needs 'block_size'",
        "randomization",
    ),
    (
        "known-languages",
        _set("languages", ["en", "ar", "xx"]),
        "error",
        "unknown language 'xx'",
        "languages.2",
    ),
    (
        "every-language",
        _delete("arms.1.material.ar"),
        "error",
        "missing ar (العربية) text for arm 'gain'; add a 'ar:' entry",
        "arms.1.material",
    ),
    (
        "every-language",
        _delete("outcomes.0.label.ar"),
        "error",
        "missing ar (العربية) text for outcome 'requested_contact'",
        "outcomes.0.label",
    ),
    (
        "every-language",
        _delete("figures.returns_last_year.denominator.ar"),
        "error",
        "missing ar (العربية) text for figure 'returns_last_year'",
        "figures.returns_last_year.denominator",
    ),
    (
        "register-languages",
        _set("purpose", "Help people consider assisted voluntary return."),
        "warning",
        "the purpose is shown on the public register, which the disclosure sends visitors to, "
        "in one language only: give it per language ('en:', 'ar:')",
        "purpose",
    ),
    (
        "register-languages",
        _delete("analysis.hypotheses.0.statement.ar"),
        "error",
        "missing ar (العربية) text for hypothesis 'h1'",
        "analysis.hypotheses.0.statement",
    ),
    (
        "register-languages",
        _set("outcomes.1.description.nl", "Nederlands"),
        "error",
        "the description of outcome 'opened_country_info' has text in 'nl', which is not in "
        "'languages'",
        "outcomes.1.description.nl",
    ),
    (
        "every-language",
        _delete("disclosure.ar"),
        "error",
        "missing ar (العربية) text for the disclosure",
        "disclosure",
    ),
    (
        "every-language",
        _set("arms.1.claims.0.text.nl", "Nederlands"),
        "error",
        "claim 1 of arm 'gain' has text in 'nl', which is not in 'languages'",
        "arms.1.claims.0.text.nl",
    ),
    (
        "every-language",
        _set("organisation", "Example Return Service"),
        "error",
        "the organisation is shown to visitors and needs one text per language ('en:', 'ar:')",
        "organisation",
    ),
    (
        "every-language",
        _delete("organisation.ar"),
        "error",
        "missing ar (العربية) text for the organisation",
        "organisation",
    ),
    (
        "every-language",
        _delete("arms.1.claims.0.source.ar"),
        "error",
        "missing ar (العربية) text for the source of claim 1 of arm 'gain'",
        "arms.1.claims.0.source",
    ),
    (
        "every-language",
        _set("arms.1.claims.0.source", "IOM Netherlands website"),
        "error",
        "the source of claim 1 of arm 'gain' is shown to visitors and needs one text",
        "arms.1.claims.0.source",
    ),
    (
        "every-language",
        _delete("figures.returns_last_year.source.en"),
        "error",
        "missing en (English) text for the source of figure 'returns_last_year'",
        "figures.returns_last_year.source",
    ),
    (
        "every-language",
        _add_arm(
            "messenger",
            messenger={
                "name": "Amina",
                "role": {"en": "Counsellor", "ar": "Counsellor (ar)"},
                "real_person": True,
                "consent_recorded": True,
            },
        ),
        "error",
        "the messenger of arm 'messenger' (name) is shown to visitors and needs one text",
        "arms.3.messenger.name",
    ),
    (
        "every-language",
        _delete("outcomes.0.acknowledgement.ar"),
        "error",
        "missing ar (العربية) text for the acknowledgement of outcome 'requested_contact'",
        "outcomes.0.acknowledgement",
    ),
    (
        "every-language",
        _delete("outcomes.1.acknowledgement"),
        "error",
        "outcome 'opened_country_info' is a kiosk button but has no 'acknowledgement'",
        "outcomes.1.label",
    ),
    (
        "every-language",
        _set("locations.0.name", "Location A"),
        "none",
        "",
        "",
    ),
    (
        "every-language",
        _set("locations.0.name", {"en": "Location A"}),
        "error",
        "missing ar (العربية) text for location 'loc-a'",
        "locations.0.name",
    ),
    (
        "disclosure",
        _set("disclosure.en.who", "This study is run by us."),
        "error",
        "must contain {organisation} so the page shows the trial's own organisation",
        "disclosure.en.who",
    ),
    (
        "disclosure",
        _set("disclosure.ar.read_more", "Ask staff (ar)."),
        "error",
        "must contain {register_url}",
        "disclosure.ar.read_more",
    ),
    (
        "disclosure",
        _set("disclosure.en.contact", "Ask {contact}."),
        "error",
        "must contain {privacy_contact}",
        "disclosure.en.contact",
    ),
    (
        "disclosure",
        _set("disclosure.en.data", "We store {nothing}."),
        "error",
        "unknown placeholder {nothing}",
        "disclosure.en.data",
    ),
    (
        "sensitivity",
        _add_arm("default"),
        "error",
        "arm 'default': element 'default' is refused in a high-sensitivity trial",
        "arms.3.element",
    ),
    (
        "sensitivity",
        _add_arm("opt_out"),
        "error",
        "element 'opt_out' is refused in a high-sensitivity trial",
        "arms.3.element",
    ),
    (
        "sensitivity",
        _add_arm("forced_choice"),
        "error",
        "element 'forced_choice' is refused in a high-sensitivity trial",
        "arms.3.element",
    ),
    (
        "sensitivity",
        _add_arm("reciprocity"),
        "error",
        "element 'reciprocity' is refused in a high-sensitivity trial",
        "arms.3.element",
    ),
    (
        "sensitivity",
        _set("domain_sensitivity", "low"),
        "error",
        "a low-sensitivity trial must say why in 'sensitivity_reason'",
        "domain_sensitivity",
    ),
    (
        "loss-frame",
        _add_arm(
            "loss_frame",
            material={
                "en": {"title": "Act now", "body": "Otherwise you may face detention."},
                "ar": {"title": "t", "body": "b"},
            },
        ),
        "error",
        "the loss frame mentions 'detention'",
        "arms.3.material.en",
    ),
    (
        "loss-frame",
        _loss_frame("Wie niet vertrekt, riskeert vreemdelingenbewaring."),
        "error",
        "the loss frame mentions 'vreemdelingenbewaring'",
        "arms.3.material.en",
    ),
    (
        "loss-frame",
        _loss_frame("Expulsion will follow."),
        "error",
        "the loss frame mentions 'Expulsion'",
        "arms.3.material.en",
    ),
    (
        "loss-frame",
        _loss_frame("The support scheme will end; ask us before it does."),
        "none",
        "",
        "",
    ),
    (
        "norm-figures",
        _delete("arms.2.figure"),
        "error",
        "arm 'norm': a local_norm arm must name its number in 'figure:'",
        "arms.2",
    ),
    (
        "norm-figures",
        _set("arms.2.figure", "missing_figure"),
        "error",
        "figure 'missing_figure' is not declared in 'figures'",
        "arms.2.figure",
    ),
    (
        "norm-figures",
        _delete("figures.returns_last_year.values.loc-b"),
        "error",
        "figure 'returns_last_year' has no value for location 'loc-b'",
        "figures.returns_last_year.values",
    ),
    (
        "norm-figures",
        _set("figures.returns_last_year.values.loc-b", 4),
        "error",
        "4 at 'loc-b' is below the small-count threshold of 10",
        "figures.returns_last_year.values.loc-b",
    ),
    (
        "norm-figures",
        _set("arms.2.material.en.body", "Many people returned."),
        "error",
        "the body must show the number with the placeholder {figure}",
        "arms.2.material.en.body",
    ),
    (
        "norm-figures",
        _set("arms.1.material.en.body", "Start {again}."),
        "error",
        "placeholder {again} cannot be filled",
        "arms.1.material.en.body",
    ),
    (
        "sourced-numbers",
        _set("arms.0.material.en.body", "Support worth 1500 euro."),
        "error",
        "arm 'control': the number 1500 is not backed by a claim of this arm",
        "arms.0.material.en",
    ),
    (
        "fresh-sources",
        _set("arms.1.claims.0.as_of", "2020-01-01"),
        "warning",
        "claim 1 of arm 'gain': as_of 2020-01-01 is",
        "arms.1.claims.0.as_of",
    ),
    (
        "fresh-sources",
        _set("figures.returns_last_year.as_of", "2099-01-01"),
        "error",
        "figure 'returns_last_year': as_of 2099-01-01 is in the future",
        "figures.returns_last_year.as_of",
    ),
    (
        "messenger",
        _add_arm("messenger"),
        "error",
        "arm 'messenger': a messenger arm must declare 'messenger'",
        "arms.3",
    ),
    (
        "messenger",
        _add_arm(
            "messenger",
            messenger={
                "name": "An actor",
                "role": {"en": "returnee", "ar": "returnee"},
                "real_person": False,
                "consent_recorded": True,
            },
        ),
        "error",
        "the messenger must be a real person",
        "arms.3.messenger",
    ),
    (
        "outcomes",
        _set("outcomes.1.primary", True),
        "error",
        "exactly one outcome must have 'primary: true' (found requested_contact, "
        "opened_country_info)",
        "outcomes.1.primary",
    ),
    (
        "outcomes",
        _set("outcomes.0.primary", False),
        "error",
        "exactly one outcome must have 'primary: true' (found none)",
        "outcomes",
    ),
    (
        "outcomes",
        _set("outcomes.1.event", "exposure"),
        "error",
        "'exposure' is logged by the platform itself",
        "outcomes.1.event",
    ),
    (
        "no-country-events",
        _set("outcomes.1.event", "opened_info_syria"),
        "error",
        "'opened_info_syria' records 'syria'",
        "outcomes.1.event",
    ),
    (
        "no-country-events",
        _set("outcomes.1.id", "nationality_afghan"),
        "error",
        "'nationality_afghan' records 'afghan'",
        "outcomes.1.id",
    ),
    (
        "no-country-events",
        _set("outcomes.1.event", "info_sierra_leone_opened"),
        "error",
        "records 'sierra_leone'",
        "outcomes.1.event",
    ),
    (
        "analysis-plan",
        _set("analysis.hypotheses.0.arm", "placebo"),
        "error",
        "no arm called 'placebo'",
        "analysis.hypotheses.0.arm",
    ),
    (
        "analysis-plan",
        _set("analysis.hypotheses.0.arm", "control"),
        "error",
        "a hypothesis compares a treatment arm with the control",
        "analysis.hypotheses.0.arm",
    ),
    (
        "analysis-plan",
        _set("analysis.hypotheses.0.outcome", "donations"),
        "error",
        "no outcome called 'donations'",
        "analysis.hypotheses.0.outcome",
    ),
    (
        "analysis-plan",
        _set("analysis.hypotheses.0.direction", "increase"),
        "warning",
        "'increase' records the expected direction only: nudgelab tests every hypothesis two-sided",
        "analysis.hypotheses.0.direction",
    ),
    ("analysis-plan", _set("analysis.confirmatory_subgroups", ["language"]), "none", "", ""),
    (
        "power",
        _set("analysis.planned_sample_size", 300),
        "warning",
        "arm 'gain': minimum detectable effect",
        "analysis.planned_sample_size",
    ),
    (
        "schedule",
        _set("schedule.end", "2027-01-01"),
        "error",
        "end 2027-01-01 is not after start 2027-01-04",
        "schedule.end",
    ),
    # Media rules with files on disk: tests/experiments/test_media.py.
    (
        "media-files",
        _set("arms.1.images", [{"file": "media/gone.png", "kind": "pictogram", "alt": _ALT}]),
        "error",
        "arm 'gain': image 'media/gone.png' not found",
        "arms.1.images.0.file",
    ),
    (
        "media-text",
        _set("arms.1.images", [{"file": "a.png", "kind": "pictogram", "alt": {"en": "A tree"}}]),
        "error",
        "arm 'gain': image 'a.png' has no alt text in 'ar'",
        "arms.1.images.0.alt",
    ),
    (
        "media-consent",
        _set(
            "arms.1.images", [{"file": "a.png", "kind": "photo", "shows_person": True, "alt": _ALT}]
        ),
        "error",
        "arm 'gain': image 'a.png' is a picture of an identifiable person and has no 'consent'",
        "arms.1.images.0",
    ),
    (
        "media-same",
        _all(
            _set("only_text_differs", True),
            _set("arms.1.images", [{"file": "a.png", "kind": "pictogram", "alt": _ALT}]),
        ),
        "error",
        "arm 'gain' shows other images than arm 'control', but 'only_text_differs: true'",
        "arms.1.images",
    ),
]


def _case_id(case: tuple[str, Mutation, str, str, str]) -> str:
    return f"{case[0]}:{case[3][:40]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_rule_trips_with_documented_message(case: tuple[str, Mutation, str, str, str]) -> None:
    rule_id, mutate, severity, fragment, path = case
    data = trial_dict()
    mutate(data)
    result = check_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "bad.yaml", settings=SETTINGS
    )
    if severity == "none":  # a valid variation: the rule must stay quiet
        assert [str(p) for p in result.problems if p.rule == rule_id] == []
        return
    matching = [p for p in result.problems if p.rule == rule_id and fragment in p.message]
    assert matching, "\n".join(str(p) for p in result.problems)
    problem = matching[0]
    assert problem.severity == severity
    assert ".".join(str(part) for part in problem.path) == path
    assert str(problem).startswith(f"bad.yaml:{problem.line}: {path}: ")
    assert problem.line > 1
    assert result.ok is (severity == "warning")


#: Ethics rules send the user to the reason: (rule, mutation, section of docs/ethics.md).
LINKED: list[tuple[str, Mutation, str]] = [
    ("sensitivity", _add_arm("default"), "nudge-elements"),
    ("sensitivity", _set("domain_sensitivity", "low"), "low-sensitivity-trials"),
    ("loss-frame", _loss_frame("Otherwise you may face detention."), "loss-frames"),
    ("norm-figures", _delete("arms.2.figure"), "claims-and-figures"),
    ("norm-figures", _set("figures.returns_last_year.values.loc-b", 4), "claims-and-figures"),
    ("norm-figures", _set("arms.2.material.en.body", "Many returned."), "claims-and-figures"),
    ("sourced-numbers", _set("arms.0.material.en.body", "Worth 1500."), "claims-and-figures"),
    ("fresh-sources", _set("arms.1.claims.0.as_of", "2020-01-01"), "claims-and-figures"),
    ("fresh-sources", _set("arms.1.claims.0.as_of", "2099-01-01"), "claims-and-figures"),
    ("messenger", _add_arm("messenger"), "messengers"),
    ("no-country-events", _set("outcomes.1.event", "opened_info_syria"), "what-the-kiosk-stores"),
    ("disclosure", _set("disclosure.en.who", "Run by us."), "disclosure"),
    ("every-language", _delete("arms.1.material.ar"), "languages"),
    ("outcomes", _set("outcomes.0.primary", False), "statistics-that-must-be-stated"),
    (
        "media-consent",
        _set(
            "arms.1.images", [{"file": "a.png", "kind": "photo", "shows_person": True, "alt": _ALT}]
        ),
        "faces-and-voices",
    ),
]


@pytest.mark.parametrize(("rule_id", "mutate", "anchor"), LINKED, ids=[c[2] for c in LINKED])
def test_ethics_messages_end_with_the_section_that_explains_them(
    rule_id: str, mutate: Mutation, anchor: str
) -> None:
    data = trial_dict()
    mutate(data)
    result = check_text(yaml.safe_dump(data, allow_unicode=True), "bad.yaml", settings=SETTINGS)
    [problem, *_] = [p for p in result.problems if p.rule == rule_id]
    link = re.search(r"see docs/ethics\.md#([\w-]+)\)$", problem.message)
    assert link, problem.message
    assert link.group(1) == anchor  # tests/test_docs.py checks that the section exists


def test_every_rule_has_a_failing_case() -> None:
    tested = {case[0] for case in CASES if case[2] != "none"}
    assert {rule.id for rule in RULES} <= tested


def test_the_base_trial_is_clean() -> None:
    result = check_text(trial_yaml(), "test-trial.yaml", settings=SETTINGS)
    assert result.problems == []
    assert result.ok and result.trial is not None


def test_low_sensitivity_allows_strong_elements_and_says_why() -> None:
    data = trial_dict(domain_sensitivity="low", sensitivity_reason="Organ donation replica.")
    _add_arm("reciprocity")(data)
    result = check_text(yaml.safe_dump(data, sort_keys=False), "low.yaml", settings=SETTINGS)
    assert [p for p in result.problems if p.rule == "sensitivity"] == []


def test_file_name_must_match_the_id() -> None:
    result = check_text(trial_yaml(), "other-name.yaml", settings=SETTINGS)
    [problem] = result.problems
    assert problem.rule == "file-name" and problem.severity == "warning"
    assert "name the file test-trial.yaml" in problem.message


def test_a_register_path_is_fine_once_the_public_address_is_set() -> None:
    data = trial_dict(register_url="/register")
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    without = Settings(today=SETTINGS.today, public_url=None)
    problems = check_text(text, "test-trial.yaml", settings=without).problems
    assert [(p.rule, p.severity, p.path) for p in problems] == [
        ("disclosure", "warning", ("register_url",))
    ]
    assert "register_url '/register' is a path" in problems[0].message
    assert "NUDGELAB_PUBLIC_URL" in problems[0].message
    assert check_text(text, "test-trial.yaml", settings=SETTINGS).problems == []


@pytest.mark.parametrize(
    "path",
    [
        ("organisation",),
        ("arms", 0, "claims", 0, "source"),
        ("arms", 3, "messenger", "name"),
        ("figures", "returns_past_year", "source"),
        ("outcomes", 0, "acknowledgement"),
    ],
)
@pytest.mark.parametrize("language", ["nl", "en", "ar"])
def test_the_example_is_refused_without_a_visitor_facing_text_in_one_language(
    path: tuple[str | int, ...], language: str
) -> None:
    """Both examples pass with every field in every language; remove one and check refuses."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    node: Any = data
    for part in path:
        node = node[part]
    del node[language]
    result = check_text(yaml.safe_dump(data, allow_unicode=True), "x.yaml", settings=SETTINGS)
    assert not result.ok
    assert any(p.rule == "every-language" and p.path == path for p in result.errors)


def test_both_examples_pass() -> None:
    for path in Path("experiments/trials").glob("*.yaml"):
        result = check_path(path, SETTINGS)
        texts = [p for p in result.problems if p.rule in ("every-language", "disclosure")]
        assert result.ok and not texts, [str(p) for p in result.problems]
