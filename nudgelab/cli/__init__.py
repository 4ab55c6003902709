"""The ``nudgelab`` command: the composition root, the only code that sees all three packages.

Each subcommand module imports its package (``experiments``, ``app``, ``analysis``) inside the
command function, so ``nudgelab check`` starts without loading Flask or statsmodels. Commands
parse options, call the packages and print; :mod:`nudgelab.cli.errors` turns every error a user
can cause into one line.
"""

from __future__ import annotations

import click

from nudgelab import __version__
from nudgelab.cli import (
    analysis_commands,
    calibrate_commands,
    check_commands,
    counts_commands,
    kiosk_commands,
    sequential_commands,
    user_commands,
)
from nudgelab.cli.errors import ExplainingGroup


@click.group(cls=ExplainingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nudgelab")
def main() -> None:
    """Run randomized trials of information materials (nudges) transparently.

    Only weak, openly disclosed nudges are allowed. The ethics and privacy rules that the
    checker, the kiosk and the report enforce, and why, are in docs/ethics.md.
    """


for _module in (
    check_commands,
    kiosk_commands,
    analysis_commands,
    counts_commands,
    calibrate_commands,
    sequential_commands,
    user_commands,
):
    for _command in _module.COMMANDS:
        main.add_command(_command)
