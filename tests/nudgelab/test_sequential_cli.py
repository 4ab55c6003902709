"""`nudgelab sequential` and the interim plan in `nudgelab check`, as a user runs them.

The boundaries are compared with published values: gsDesign (``gsDesign(k = 5, test.type = 2,
alpha = 0.025, sfu = sfLDOF)``) and rpact (``getDesignGroupSequential(kMax = 5, alpha = 0.05,
sided = 2, typeOfDesign = "asOF")``) give 4.877, 3.357, 2.680, 2.290, 2.031 for the
O'Brien-Fleming type and 2.438, 2.427, 2.410, 2.397, 2.386 for the Pocock type (``sfLDPocock``,
``"asP"``); the nominal p-values and cumulative alpha are checked against scipy's normal
distribution and the spending functions written out here.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from scipy.stats import norm

from nudgelab.cli import main
from tests.factories import trial_dict

PUBLISHED = {
    "obf": (4.877, 3.357, 2.680, 2.290, 2.031),
    "pocock": (2.438, 2.427, 2.410, 2.397, 2.386),
}
FIVE = "0.2,0.4,0.6,0.8,1"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _spent(t: float, alpha: float, spending: str) -> float:
    """Two-sided cumulative alpha, written out: alpha/2 per side (gsDesign/rpact convention)."""
    if spending == "obf":
        return 2 * 2 * norm.sf(norm.isf(alpha / 4) / math.sqrt(t))
    return alpha * math.log(1 + (math.e - 1) * t)


@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_json_reproduces_the_published_boundaries(spending: str) -> None:
    code, output = _run(
        "sequential", "--looks", FIVE, "--alpha", "0.05", "--spending", spending, "--format", "json"
    )
    assert code == 0, output
    data = json.loads(output)
    assert data["sides"] == 2 and data["alpha"] == 0.05
    assert "alpha/2" in data["convention"]
    looks = data["looks"]
    assert [round(look["z_boundary"], 3) for look in looks] == list(PUBLISHED[spending])
    for look, t in zip(looks, (0.2, 0.4, 0.6, 0.8, 1.0), strict=True):
        assert look["fraction"] == pytest.approx(t)
        assert look["p_boundary"] == pytest.approx(2 * norm.sf(look["z_boundary"]), rel=1e-9)
        assert look["alpha_cumulative"] == pytest.approx(_spent(t, 0.05, spending), rel=1e-9)
    assert sum(look["alpha_spent"] for look in looks) == pytest.approx(0.05, abs=1e-12)
    # Jennison & Turnbull (2000) Table 2.1/2.6: the classical tests cost 1.028 (OBF) and 1.207
    # (Pocock) at K = 5, power 0.8; the spending-function versions are close to those.
    expected = {"obf": 1.028, "pocock": 1.207}[spending]
    assert data["inflation_factor"] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_text_table_shows_every_look(spending: str) -> None:
    code, output = _run("sequential", "--looks", FIVE, "--spending", spending)
    assert code == 0, output
    assert "alpha/2 is spent on each side" in output
    rows = re.findall(
        r"^\s+(\d)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)$", output, re.M
    )
    assert len(rows) == 5
    assert [f"{float(row[2]):.3f}" for row in rows] == [f"{c:.3f}" for c in PUBLISHED[spending]]
    assert float(rows[-1][5]) == pytest.approx(0.05, abs=1e-6)
    assert re.search(r"maximum sample size inflation 1\.\d{4} \(power 80%\)", output)


def test_a_number_of_looks_means_equal_spacing() -> None:
    by_count = json.loads(_run("sequential", "--looks", "5", "--format", "json")[1])
    by_list = json.loads(_run("sequential", "--looks", FIVE, "--format", "json")[1])
    assert by_count == by_list


def test_an_interim_only_design_has_no_inflation_yet() -> None:
    code, output = _run("sequential", "--looks", "0.3,0.6", "--format", "json")
    assert code == 0
    data = json.loads(output)
    assert data["inflation_factor"] is None
    assert data["looks"][-1]["alpha_cumulative"] < 0.05
    code, output = _run("sequential", "--looks", "0.3,0.6")
    assert "not defined until the last look is at fraction 1" in output


@pytest.mark.parametrize(
    ("looks", "message"),
    [
        ("0.5,0.4,1", "information fractions must be strictly increasing"),
        ("0.5,1.2", "information fractions must lie in (0, 1]"),
        ("half,1", "is not a list of information fractions"),
        ("0", "give between 1 and 100 equally spaced looks"),
    ],
)
def test_bad_looks_are_one_line(looks: str, message: str) -> None:
    code, output = _run("sequential", "--looks", looks)
    assert code == 2
    assert "Invalid value for '--looks'" in output and message in output
    assert "Traceback" not in output


def test_check_prints_the_plan_its_boundaries_and_cost(tmp_path: Path) -> None:
    data = trial_dict()
    data["analysis"]["interim"] = {"visits": [1500, 3000, 4500, 6000]}
    path = tmp_path / "test-trial.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code, output = _run("check", "--today", "2026-11-29", str(path))
    assert code == 0, output
    assert "interim looks: 4, O'Brien-Fleming-type alpha spending" in output
    assert "boundaries of one comparison at alpha 0.025 = 0.05/2" in output
    rows = re.findall(r"^\s+(\d)\s+([\d.]+)\s+([\d,]+)\s+([\d.]+)\s", output, re.M)
    assert [(r[0], r[2]) for r in rows] == [
        ("1", "1,500"),
        ("2", "3,000"),
        ("3", "4,500"),
        ("4", "6,000"),
    ]
    # The boundaries are those of `nudgelab sequential` at the comparison's level.
    same = json.loads(
        _run("sequential", "--looks", "0.25,0.5,0.75,1", "--alpha", "0.025", "--format", "json")[1]
    )
    assert [r[3] for r in rows] == [f"{look['z_boundary']:.4f}" for look in same["looks"]]
    factor = same["inflation_factor"]
    assert f"maximum sample size inflation {factor:.4f} (power 80%)" in output
    assert f"plan {math.ceil(6000 * factor):,} visits instead of 6,000" in output
    assert "group-sequential Holm procedure (Maurer & Bretz 2013)" in output
    assert "passes its alpha to the other," in output


def test_check_without_a_plan_prints_no_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "test-trial.yaml"
    path.write_text(yaml.safe_dump(trial_dict(), sort_keys=False))
    code, output = _run("check", "--today", "2026-11-29", str(path))
    assert code == 0 and "interim looks" not in output
