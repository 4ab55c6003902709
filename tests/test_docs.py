"""Docs that cannot drift: every rule, command and set-up step the code has is documented."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner

from experiments.rules import RULES
from nudgelab.cli import main

ROOT = Path(__file__).resolve().parents[1]
ETHICS_DOC = ROOT / "docs" / "ethics.md"

#: Problem ids that come from loading a file rather than from the rule registry.
LOAD_PROBLEMS = frozenset({"file", "yaml", "schema", "file-name"})

#: A citation of a file outside the repository: the folder next to it, or the ethics page by
#: its old upper-case name. Spelt so that this file does not match itself.
OUTSIDE = re.compile(r"(?<![\w-])(?:\.\./)?shar[e]d/|\bETHIC[S]\b")
#: A link to a section of docs/ethics.md, from anywhere.
ETHICS_LINK = re.compile(r"ethics\.md#([\w-]+)")


def test_every_rule_is_documented_with_its_summary() -> None:
    docs = (ROOT / "docs" / "trial-format.md").read_text()
    for rule in RULES:
        assert f"| `{rule.id}` | {rule.summary} |" in docs, rule.id


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert re.search(rf"nudgelab {re.escape(name)}\b", readme), name
        assert CliRunner().invoke(main, [name, "--help"]).exit_code == 0


def test_readme_has_exactly_two_setup_commands_and_ci_uses_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in setup.strip().splitlines()]
    assert commands == ["make kiosk", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in ci.splitlines() if line.startswith("make ")] == ["make test"]


def _tracked_text_files() -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every file git tracks that is UTF-8 text."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in sorted(filter(None, listed.split("\0"))):
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def _outside_citations(files: Iterator[tuple[str, str]]) -> list[str]:
    return [
        f"{name}:{number}: {line.strip()}"
        for name, text in files
        for number, line in enumerate(text.splitlines(), start=1)
        if OUTSIDE.search(line)
    ]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Anchors of every heading outside code blocks, with GitHub's ``-1`` for repeats."""
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6} (.+)", line)
        if heading and not fenced:
            anchor = base = github_anchor(heading.group(1))
            repeat = 0
            while anchor in found:
                repeat += 1
                anchor = f"{base}-{repeat}"
            found.add(anchor)
    return found


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_anchors_follow_github() -> None:
    assert github_anchor("Statistics that must be stated") == "statistics-that-must-be-stated"
    assert github_anchor("`no-country-events`: Why?") == "no-country-events-why"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## B c") == {"a", "a-1", "b-c"}


def test_user_documentation_cites_only_files_in_the_repository() -> None:
    docs = [("README.md", (ROOT / "README.md").read_text())]
    docs += [(f"docs/{p.name}", p.read_text()) for p in sorted((ROOT / "docs").glob("*.md"))]
    assert _outside_citations(iter(docs)) == []


def test_no_tracked_file_cites_a_path_outside_the_repository() -> None:
    assert _outside_citations(_tracked_text_files()) == []


def test_every_rule_id_is_in_the_ethics_rule_index() -> None:
    index = _section(ETHICS_DOC.read_text(), "Rule index")
    listed = re.findall(r"^\| `([a-z-]+)` \|", index, re.MULTILINE)
    assert len(listed) == len(set(listed)), "a rule is listed twice"
    assert set(listed) == {rule.id for rule in RULES} | LOAD_PROBLEMS


def _disclosure_ids(text: str) -> set[str]:
    """``D1`` … ``D10`` named in ``text``; a range such as ``D1-D7`` names every id in it."""
    ids = set()
    for first, last in re.findall(r"\bD(\d{1,2})(?:\s*[-–]\s*D(\d{1,2}))?\b", text):
        ids |= {f"D{n}" for n in range(int(first), int(last or first) + 1)}
    return ids


def test_every_disclosure_id_the_code_uses_is_documented() -> None:
    documented = re.findall(
        r"^\| (D\d+) \|", _section(ETHICS_DOC.read_text(), "Disclosure"), re.MULTILINE
    )
    assert documented == [f"D{n}" for n in range(1, 11)]
    used = {
        name: _disclosure_ids(text)
        for name, text in _tracked_text_files()
        if name.endswith((".py", ".html", ".yaml", ".md", ".js")) and name != "docs/ethics.md"
    }
    assert set().union(*used.values()) >= {"D1", "D8", "D10"}  # the code does cite them
    known = set(documented)
    assert {name: ids - known for name, ids in used.items() if ids - known} == {}


def test_every_link_to_the_ethics_rules_points_at_a_section() -> None:
    sections = anchors(ETHICS_DOC.read_text())
    links = [
        (name, anchor)
        for name, text in _tracked_text_files()
        for anchor in ETHICS_LINK.findall(text)
    ]
    links += [("docs/ethics.md", a) for a in re.findall(r"\]\(#([\w-]+)\)", ETHICS_DOC.read_text())]
    from_rules = [anchor for name, anchor in links if name.startswith("experiments/rules/")]
    assert len(set(from_rules)) >= 5, "the ethics rules' messages link to their sections"
    assert [(name, anchor) for name, anchor in links if anchor not in sections] == []
