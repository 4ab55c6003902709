"""`nudgelab analyze-counts` as an evaluator runs it: JSON keys, the text table, clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from nudgelab.cli import main

ARM_KEYS = {
    "arm", "n", "successes", "rate", "rate_ci_low", "rate_ci_high", "diff", "diff_ci_low",
    "diff_ci_high", "p_value", "p_adjusted", "relative_risk", "relative_risk_ci_low",
    "relative_risk_ci_high", "odds_ratio", "odds_ratio_ci_low", "odds_ratio_ci_high", "test",
    "is_control", "warnings",
}  # fmt: skip
TOP_KEYS = {
    "control", "correction", "alpha", "interval", "omnibus_chi2", "omnibus_df", "omnibus_p",
    "warnings", "arms",
}  # fmt: skip
GOOD = "arm,n,successes\ncontrol,1200,36\ngain,1000,45\nnorm,900,40\n"


def run(tmp_path: Path, text: str, *options: str) -> tuple[int, str, str]:
    path = tmp_path / "counts.csv"
    path.write_text(text)
    result = CliRunner().invoke(main, ["analyze-counts", str(path), *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def test_json_has_every_documented_key(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, GOOD, "--control", "control", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= TOP_KEYS
    assert [a["arm"] for a in data["arms"]] == ["control", "gain", "norm"]
    for arm in data["arms"]:
        assert set(arm) >= ARM_KEYS
    gain = data["arms"][1]
    assert gain["rate"] == 0.045 and gain["diff"] == pytest.approx(0.015)  # proportions
    low, high = proportion_confint(45, 1000, method="wilson")
    assert math.isclose(gain["rate_ci_low"], low, abs_tol=1e-12)
    low, high = confint_proportions_2indep(45, 1000, 36, 1200, method="newcomb")
    assert math.isclose(gain["diff_ci_high"], high, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("option", "method"), [("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")]
)
def test_correction_option(tmp_path: Path, option: str, method: str) -> None:
    _, out, _ = run(
        tmp_path, GOOD, "--control", "control", "--correction", option, "--format", "json"
    )
    data = json.loads(out)
    raw = [a["p_value"] for a in data["arms"][1:]]
    expected = multipletests(raw, method=method)[1]
    assert data["correction"] == option
    assert [a["p_adjusted"] for a in data["arms"][1:]] == pytest.approx(list(expected), rel=1e-12)


def test_interval_and_alpha_options(tmp_path: Path) -> None:
    _, out, _ = run(
        tmp_path,
        GOOD,
        "--control",
        "control",
        "--interval",
        "wald",
        "--alpha",
        "0.1",
        "--format",
        "json",
    )
    data = json.loads(out)
    low, high = confint_proportions_2indep(45, 1000, 36, 1200, method="wald", alpha=0.1)
    gain = data["arms"][1]
    assert data["interval"] == "wald" and data["alpha"] == 0.1
    assert (gain["diff_ci_low"], gain["diff_ci_high"]) == pytest.approx((low, high), abs=1e-12)


def test_text_table_states_methods_and_uses_percentage_points(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, GOOD, "--control", "control", "--correction", "bonferroni")
    assert code == 0
    assert "Wilson 95% CI" in out and "Newcombe hybrid score 95% CI" in out
    assert "two-proportion z-test (pooled)" in out and "Fisher's exact" in out
    assert "Bonferroni across 2 comparisons" in out
    gain = next(line for line in out.splitlines() if line.startswith("gain"))
    assert "+1.50" in gain and "4.50" in gain  # percentage points and percent for humans
    assert "omnibus chi-square across all arms" in out


def test_fisher_shows_in_both_formats(tmp_path: Path) -> None:
    text = "arm,n,successes\ncontrol,200,2\nsmall,20,4\n"
    _, out, _ = run(tmp_path, text, "--control", "control", "--format", "json")
    assert json.loads(out)["arms"][1]["test"] == "fisher"
    _, out, _ = run(tmp_path, text, "--control", "control")
    assert "fisher" in next(line for line in out.splitlines() if line.startswith("small"))


def test_comments_blank_lines_extra_columns_and_spaces_are_accepted(tmp_path: Path) -> None:
    text = (
        "# source: somewhere, Table 2\n\n"
        "arm, n ,successes,note\ncontrol, 1200 ,36,x\n gain,1000,45,y\n"
    )
    code, out, _ = run(tmp_path, text, "--control", "control", "--format", "json")
    assert code == 0 and json.loads(out)["arms"][1]["arm"] == "gain"


@pytest.mark.parametrize(
    ("text", "control", "message"),
    [
        ("arm,n\ncontrol,10\n", "control", "counts.csv:1: header lacks column(s) successes"),
        ("control,10,1\ngain,10,2\n", "control", "header lacks column(s) arm, n, successes"),
        (
            "arm,n,successes\ncontrol,10,x\ngain,10,2\n",
            "control",
            "counts.csv:2: successes must be a whole number, not 'x'",
        ),
        (
            "arm,n,successes\ncontrol,10.5,1\ngain,10,2\n",
            "control",
            "counts.csv:2: n must be a whole number, not '10.5'",
        ),
        (
            "arm,n,successes\ncontrol,10,11\ngain,10,2\n",
            "control",
            "counts.csv:2: successes (11) are more than n (10)",
        ),
        (
            "arm,n,successes\ncontrol,0,0\ngain,10,2\n",
            "control",
            "counts.csv:2: n is 0 for arm 'control'",
        ),
        ("arm,n,successes\ncontrol,10,-1\ngain,10,2\n", "control", "successes cannot be negative"),
        (
            "arm,n,successes\ncontrol,10,1\ncontrol,10,2\n",
            "control",
            "counts.csv:3: arm 'control' already appears on line 2",
        ),
        (
            "arm,n,successes\ncontrol,10,1\ngain,10,2\n",
            "placebo",
            "control arm 'placebo' is not in the file (arms: control, gain)",
        ),
        ("arm,n,successes\ncontrol,10,1\n", "control", "need at least two arms"),
        (
            "arm,n,successes\ncontrol,10,1,9\ngain,10,2\n",
            "control",
            "counts.csv:2: 4 fields where the header has 3",
        ),
        ("# only a comment\n", "control", "no header and no rows"),
        ("", "control", "no header and no rows"),
    ],
)
def test_problems_are_clear_errors_with_exit_1(
    tmp_path: Path, text: str, control: str, message: str
) -> None:
    code, out, err = run(tmp_path, text, "--control", control, "--format", "json")
    assert code == 1 and out == ""
    assert message in err and "Traceback" not in err


def test_every_problem_in_the_file_is_listed(tmp_path: Path) -> None:
    text = "arm,n,successes\na,10,x\nb,5,6\nc,0,0\n"
    code, _, err = run(tmp_path, text, "--control", "a")
    assert code == 1 and len(err.strip().splitlines()) == 3


def test_unreadable_file_and_bad_options_exit_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["analyze-counts", str(tmp_path / "missing.csv"), "--control", "c"]
    )
    assert result.exit_code == 1 and "cannot read the file" in result.stderr
    code, _, err = run(tmp_path, GOOD, "--control", "control", "--correction", "sidak")
    assert code == 2 and "sidak" in err  # click's usage error
