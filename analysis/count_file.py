"""Counts per arm from a CSV file, with every problem in the file found at its line.

The file has a header naming the columns ``arm,n,successes`` (others are ignored, names are
case-insensitive) and one row per arm; blank lines and lines starting with ``#`` (for the source
of the numbers) are skipped.

>>> counts, problems = parse_counts("arm,n,successes\\ncontrol,100,3\\ngain,90,5\\n", "x.csv")
>>> counts[1], problems
(ArmCounts(arm='gain', n=90, successes=5), [])
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from analysis.estimate import ArmCounts

__all__ = ["REQUIRED", "CountsProblem", "parse_counts", "read_counts"]

#: The columns a counts file must have.
REQUIRED = ("arm", "n", "successes")


@dataclass(frozen=True)
class CountsProblem:
    """One problem in a counts file, at a line (0 when it concerns the whole file)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


Rows = tuple[list[ArmCounts], list[CountsProblem]]


def read_counts(path: str | Path, control: str | None = None) -> Rows:
    """The arms in the file at ``path`` and every problem found (none when it is usable).

    With ``control``, a file without that arm is a problem too. A file that cannot be read is
    one problem, not an exception.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return [], [CountsProblem(str(path), 0, f"cannot read the file: {error}")]
    return parse_counts(text, str(path), control)


def parse_counts(text: str, path: str = "<counts>", control: str | None = None) -> Rows:
    """Like :func:`read_counts`, from the file's text; ``path`` names it in the problems."""
    lines = [
        (number, _fields(line))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return [], [CountsProblem(path, 0, "no header and no rows; expected arm,n,successes")]
    (header_line, header), *rows = lines
    columns = _Columns(header)
    if columns.missing:
        message = (
            f"header lacks column(s) {', '.join(columns.missing)}; expected arm,n,successes "
            f"(found {','.join(columns.names) or 'nothing'})"
        )
        return [], [CountsProblem(path, header_line, message)]
    counts, problems = _read_rows(path, columns, rows)
    if not problems:
        problems = _whole_file_problems(path, counts, control)
    return counts, problems


def _fields(line: str) -> list[str]:
    """The fields of one CSV line (a line is a row: a quote never spans lines)."""
    return next(csv.reader([line]))


class _Columns:
    """The header of a counts file: its column names and where the required ones are."""

    def __init__(self, header: list[str]) -> None:
        self.names = [name.strip().lower() for name in header]
        self.missing = [name for name in REQUIRED if name not in self.names]
        self.index = {name: self.names.index(name) for name in REQUIRED if name in self.names}

    def cells(self, row: list[str]) -> dict[str, str]:
        """The required fields of a row, stripped, by column name."""
        return {name: row[self.index[name]].strip() for name in REQUIRED}


def _read_rows(path: str, columns: _Columns, rows: Iterable[tuple[int, list[str]]]) -> Rows:
    """Every valid row as counts; every invalid one as its problems."""
    counts: list[ArmCounts] = []
    problems: list[CountsProblem] = []
    first_seen: dict[str, int] = {}  # arm -> the line it first appears on
    for line, row in rows:
        if len(row) != len(columns.names):
            message = f"{len(row)} fields where the header has {len(columns.names)}"
            problems.append(CountsProblem(path, line, message))
            continue
        cells = columns.cells(row)
        errors = _row_errors(cells, first_seen)
        problems += [CountsProblem(path, line, message) for message in errors]
        if cells["arm"]:
            first_seen.setdefault(cells["arm"], line)
        if not errors:
            counts.append(ArmCounts(cells["arm"], int(cells["n"]), int(cells["successes"])))
    return counts, problems


def _row_errors(cells: dict[str, str], first_seen: dict[str, int]) -> list[str]:
    """What is wrong with one row whose fields match the header (empty when nothing)."""
    arm = cells["arm"]
    errors = []
    if not arm:
        errors.append("arm is empty")
    elif arm in first_seen:
        errors.append(f"arm {arm!r} already appears on line {first_seen[arm]}")
    n, successes = (_whole_number(cells[name]) for name in ("n", "successes"))
    for name, value in (("n", n), ("successes", successes)):
        if value is None:
            errors.append(f"{name} must be a whole number, not {cells[name]!r}")
        elif value < 0:
            errors.append(f"{name} cannot be negative ({value})")
    if n == 0:
        errors.append(f"n is 0 for arm {arm!r}: an arm without observations cannot be analysed")
    if n is not None and successes is not None and successes > n:
        errors.append(f"successes ({successes}) are more than n ({n}) for arm {arm!r}")
    return errors


def _whole_number(text: str) -> int | None:
    """``text`` as an integer (an optional sign, then ASCII digits), else None."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    return int(text) if digits.isascii() and digits.isdigit() else None


def _whole_file_problems(
    path: str, counts: list[ArmCounts], control: str | None
) -> list[CountsProblem]:
    """Too few arms, or no ``control`` arm, in a file whose rows are all valid."""
    arms = sorted(c.arm for c in counts)
    if len(arms) < 2:
        return [CountsProblem(path, 0, "need at least two arms (a control and another)")]
    if control is not None and control not in arms:
        message = f"control arm {control!r} is not in the file (arms: {', '.join(arms)})"
        return [CountsProblem(path, 0, message)]
    return []
