"""The notebooks in notebooks/ run from top to bottom without an error and print what they show."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

#: Per notebook, text its outputs must contain (every notebook must be listed here).
EXPECTED = {
    "worked-analysis": (
        "neighbours  +8.1 pp",
        "omnibus chi-square",
        "4,000 randomized",
        "primary outcome requested_contact",
    ),
    "planning": (
        # the numbers `nudgelab check` prints for the example trial (tests/experiments)
        "at the planned 4,000 visits: mde gain 4.25 pp, power for the pre-registered effect 48%",
        "368 analysed visits a week",
        "<- this trial",
        "obrien-fleming",
        "pocock",
        "Five O'Brien-Fleming-type looks cost",
    ),
}


def test_there_is_a_notebook() -> None:
    assert NOTEBOOKS
    assert {path.stem for path in NOTEBOOKS} == set(EXPECTED)


@cache
def _run(path: Path) -> str:
    """Execute a notebook once per test session; the text of its outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    return "".join(out.get("text", "") for out in outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_executes(path: Path) -> None:
    text = _run(path)
    for expected in EXPECTED[path.stem]:
        assert expected in text, expected


def test_the_planning_notebook_uses_the_design_and_sequential_numbers() -> None:
    """Its figures agree with experiments.design and analysis.sequential computed here."""
    from analysis.sequential import boundaries
    from experiments.check import check_path
    from experiments.design import minimum_detectable_effect

    path = next(p for p in NOTEBOOKS if p.stem == "planning")
    text = _run(path)
    trial = check_path(path.parents[1] / "experiments/trials/tearoom-return-info.yaml").trial
    weekly = 25 * 5 * 3 * 0.98
    per_arm = weekly * 12 / 5
    mde = minimum_detectable_effect(0.05, per_arm, per_arm, 0.05 / 4, 0.8)
    assert f"{per_arm:>9,.0f} {mde * 100:>10.2f}" in text  # the 12-week row
    pocock = boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.05 / 4, "pocock", power=0.8)
    assert f"five Pocock-type looks {100 * (pocock.inflation_factor - 1):.1f}%" in text
    assert trial.analysis.planned_sample_size == 4000
