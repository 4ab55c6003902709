"""Reading a counts file (arm,n,successes): the arms it gives, and every problem at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.count_file import CountsProblem, parse_counts, read_counts
from analysis.estimate import ArmCounts


def messages(text: str, control: str | None = None) -> list[str]:
    return [str(problem) for problem in parse_counts(text, "c.csv", control)[1]]


def test_a_usable_file_gives_its_arms_in_order() -> None:
    text = "# Table 2, somewhere\n\nArm, N ,Successes,note\ncontrol,1200,36,x\n gain , +1000 ,45,\n"
    counts, problems = parse_counts(text, "c.csv", "control")
    assert problems == []
    assert counts == [ArmCounts("control", 1200, 36), ArmCounts("gain", 1000, 45)]


def test_columns_may_come_in_any_order() -> None:
    counts, _ = parse_counts("successes,arm,n\n3,a,10\n4,b,12\n")
    assert counts == [ArmCounts("a", 10, 3), ArmCounts("b", 12, 4)]


def test_problems_name_the_file_line_after_comments_and_blank_lines() -> None:
    text = "# source\narm,n,successes\n\ncontrol,10,x\n# note\ngain,10,11\n"
    assert messages(text) == [
        "c.csv:4: successes must be a whole number, not 'x'",
        "c.csv:6: successes (11) are more than n (10) for arm 'gain'",
    ]


def test_every_problem_of_a_row_is_listed() -> None:
    assert messages("arm,n,successes\n,-1,1.5\nb,1,1\n") == [
        "c.csv:2: arm is empty",
        "c.csv:2: n cannot be negative (-1)",
        "c.csv:2: successes must be a whole number, not '1.5'",
    ]


@pytest.mark.parametrize("number", ["1e3", "10.0", "", "+", "٣", "²", "1 000"])
def test_only_plain_whole_numbers_are_counts(number: str) -> None:
    assert messages(f"arm,n,successes\na,{number},1\nb,5,1\n") == [
        f"c.csv:2: n must be a whole number, not {number.strip()!r}"
    ]


def test_a_repeated_arm_points_at_its_first_line_even_when_that_line_is_invalid() -> None:
    text = "arm,n,successes\na,0,0\nb,5,1\na,5,1\n"
    assert messages(text) == [
        "c.csv:2: n is 0 for arm 'a': an arm without observations cannot be analysed",
        "c.csv:4: arm 'a' already appears on line 2",
    ]


def test_a_row_with_the_wrong_number_of_fields_is_one_problem() -> None:
    text = 'arm,n,successes\n"a, quoted",5,1\nb,5\nc,5,1,9\n'
    assert messages(text) == [
        "c.csv:3: 2 fields where the header has 3",
        "c.csv:4: 4 fields where the header has 3",
    ]


def test_a_header_without_the_columns_is_the_only_problem() -> None:
    assert messages("arm;n;successes\na;1;1\n") == [
        "c.csv:1: header lacks column(s) arm, n, successes; expected arm,n,successes "
        "(found arm;n;successes)"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_a_file_without_a_header(text: str) -> None:
    assert messages(text) == ["c.csv: no header and no rows; expected arm,n,successes"]


def test_whole_file_problems_only_once_the_rows_are_valid() -> None:
    one_arm = "arm,n,successes\ncontrol,10,1\n"
    assert messages(one_arm) == ["c.csv: need at least two arms (a control and another)"]
    assert messages(one_arm.replace("10", "x")) == ["c.csv:2: n must be a whole number, not 'x'"]
    two = one_arm + "gain,10,2\n"
    assert messages(two, "placebo") == [
        "c.csv: control arm 'placebo' is not in the file (arms: control, gain)"
    ]
    assert messages(two, "gain") == [] and messages(two) == []


def test_read_counts_reads_a_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("arm,n,successes\na,10,1\nb,10,2\n", encoding="utf-8-sig")
    assert read_counts(path, "a") == ([ArmCounts("a", 10, 1), ArmCounts("b", 10, 2)], [])


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    counts, problems = read_counts(tmp_path / "missing.csv")
    assert counts == [] and len(problems) == 1
    assert str(problems[0]).startswith(f"{tmp_path / 'missing.csv'}: cannot read the file: ")
    binary = tmp_path / "counts.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe")
    assert "cannot read the file" in str(read_counts(binary)[1][0])


def test_a_problem_reads_as_file_line_message() -> None:
    assert str(CountsProblem("c.csv", 3, "bad")) == "c.csv:3: bad"
    assert str(CountsProblem("c.csv", 0, "bad")) == "c.csv: bad"
