"""`nudgelab check` as a user runs it: output lines, exit codes, no tracebacks."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from statsmodels.stats.power import NormalIndPower

from nudgelab.cli import main
from tests.factories import trial_dict, trial_yaml

TRIALS = sorted(Path("experiments/trials").glob("*.yaml"))
DATA = Path("tests/experiments/data")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", "--today", "2026-11-29", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_examples_pass() -> None:
    assert {path.stem for path in TRIALS} >= {"tearoom-return-info", "organ-donation-2013"}
    code, output = _run(*map(str, TRIALS))
    assert code == 0, output
    assert re.search(r"^ok tearoom-return-info$", output, re.M)
    assert re.search(r"^ok organ-donation-2013( \(\d+ warnings\))?$", output, re.M)
    assert "error" not in output.lower()


def test_bad_file_lists_problems_and_exits_1() -> None:
    code, output = _run(str(DATA / "ten-mistakes.yaml"))
    assert code == 1
    lines = output.strip().splitlines()
    assert len([line for line in lines if re.match(r"^\S+\.yaml:\d+: \S+: ", line)]) == 10
    assert lines[-1].startswith("FAILED") and "10 errors" in lines[-1]
    assert "Traceback" not in output


def test_one_bad_file_fails_the_run_but_all_are_checked(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [\n")
    code, output = _run(str(broken), str(TRIALS[0]))
    assert code == 1
    assert "not valid YAML" in output and f"ok {TRIALS[0].stem}" in output


def test_mde_printed_matches_statsmodels(tmp_path: Path) -> None:
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml())
    code, output = _run(str(path))
    assert code == 0, output
    printed = re.search(r"mde gain vs control: ([\d.]+) pp", output)
    assert printed, output
    # The factory trial: 6000 visits over 3 equal arms, baseline 5 %, alpha 0.05/2, power 0.8.
    h = NormalIndPower().solve_power(None, nobs1=2000, alpha=0.025, power=0.8, ratio=1.0)
    expected = (math.sin((h + 2 * math.asin(math.sqrt(0.05))) / 2) ** 2 - 0.05) * 100
    assert float(printed.group(1)) == pytest.approx(expected, abs=0.005)


def test_mde_threshold_and_age_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml())
    code, output = _run("--max-mde", "1", str(path))
    assert code == 0 and "warning: arm 'gain': minimum detectable effect" in output
    code, output = _run("--max-mde", "1", "--strict", str(path))
    assert code == 1
    code, output = _run("--max-age-days", "1", str(path))
    assert code == 0 and "warning: claim 1 of arm 'gain': as_of 2026-10-01 is" in output


def test_small_count_threshold_is_configurable(tmp_path: Path) -> None:
    data = trial_dict()
    path = tmp_path / "test-trial.yaml"
    path.write_text(yaml.safe_dump(data))
    code, output = _run("--small-count", "20", str(path))
    assert code == 1 and "below the small-count threshold of 20" in output


def test_usage_errors_are_clear() -> None:
    code, output = _run()
    assert code == 2 and "Missing argument" in output
