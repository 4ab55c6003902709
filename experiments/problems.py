"""A problem found in a trial file, with the file, the YAML line and the field path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Path = tuple[str | int, ...]


def dotted(path: Path) -> str:
    """``("arms", 2, "material", "ar")`` → ``arms.2.material.ar`` (``<trial>`` for the root)."""
    return ".".join(str(part) for part in path) or "<trial>"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``error``) or worth a look (``warning``) in a trial file."""

    file: str
    line: int
    path: Path
    message: str
    severity: Literal["error", "warning"] = "error"
    rule: str = "schema"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {dotted(self.path)}: {prefix}{self.message}"


class LineMap:
    """Line numbers of the YAML nodes of a trial file, by field path."""

    def __init__(
        self, lines: dict[Path, int] | None = None, key_lines: dict[Path, int] | None = None
    ):
        self.lines = lines or {}
        self.key_lines = key_lines or {}

    def line(self, path: Sequence[str | int], *, key: bool = False) -> int:
        """Line of ``path`` (of its key when ``key``), else of its nearest ancestor, else 1."""
        path = tuple(path)
        if key and path in self.key_lines:
            return self.key_lines[path]
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1
