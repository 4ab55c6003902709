"""`nudgelab check`: validate trial files (being written)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
