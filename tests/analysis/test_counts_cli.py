"""`nudgelab analyze-counts` as an evaluator runs it: JSON keys, the text table, clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from nudgelab.cli import main

ARM_KEYS = {
    "arm", "n", "successes", "rate", "rate_ci_low", "rate_ci_high", "diff", "diff_ci_low",
    "diff_ci_high", "p_value", "p_adjusted", "relative_risk", "relative_risk_ci_low",
    "relative_risk_ci_high", "odds_ratio", "odds_ratio_ci_low", "odds_ratio_ci_high", "test",
    "is_control", "warnings", "diff_simultaneous_ci_low", "diff_simultaneous_ci_high",
    "simultaneous_level", "diff_ci_unadjusted", "diff_ci_simultaneous",
}  # fmt: skip
TOP_KEYS = {
    "control", "correction", "alpha", "interval", "omnibus_chi2", "omnibus_df", "omnibus_p",
    "warnings", "arms", "family", "intervals", "family_size", "simultaneous",
    "simultaneous_level", "exact_below", "small_sample",
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
    low, high = proportion_confint(45, 1000, method="beta")
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
    assert "Clopper-Pearson 95% CI" in out and "Newcombe hybrid score 95% CI" in out
    assert "two-proportion z-test (pooled)" in out and "exact unconditional z-test" in out
    assert "Bonferroni across 2 comparisons" in out
    assert "97.5% sim. CI: Bonferroni simultaneous interval" in out
    gain = next(line for line in out.splitlines() if line.startswith("gain"))
    assert "+1.50" in gain and "4.50" in gain  # percentage points and percent for humans
    assert "omnibus chi-square across all arms" in out


def test_the_small_sample_test_shows_in_both_formats(tmp_path: Path) -> None:
    text = "arm,n,successes\ncontrol,200,2\nsmall,20,4\n"
    _, out, _ = run(tmp_path, text, "--control", "control", "--format", "json")
    data = json.loads(out)
    assert data["arms"][1]["test"] == "exact-z" and data["small_sample"] == "exact-z"
    _, out, _ = run(tmp_path, text, "--control", "control")
    assert "exact-z" in next(line for line in out.splitlines() if line.startswith("small"))
    options = ("--small-sample-test", "fisher", "--exact-below", "2", "--format", "json")
    _, out, _ = run(tmp_path, text, "--control", "control", *options)
    data = json.loads(out)
    assert data["arms"][1]["test"] == "fisher" and data["exact_below"] == 2.0
    expected = fisher_exact([[4, 16], [2, 198]]).pvalue
    assert data["arms"][1]["p_value"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("correction", "method", "controls"),
    [
        ("holm", "bonferroni", "family-wise error rate"),
        ("bonferroni", "bonferroni", "family-wise error rate"),
        ("bh", "benjamini-yekutieli", "false discovery rate"),
    ],
)
def test_json_names_the_family_and_which_interval_each_field_is(
    tmp_path: Path, correction: str, method: str, controls: str
) -> None:
    options = ("--control", "control", "--correction", correction, "--format", "json")
    _, out, _ = run(tmp_path, GOOD, *options)
    data = json.loads(out)
    assert data["family"]["correction"] == correction and data["family"]["comparisons"] == 2
    assert data["family"]["controls"] == controls
    fields = {tuple(item["fields"]): item for item in data["intervals"]}
    unadjusted = fields["diff_ci_low", "diff_ci_high"]
    assert unadjusted["level"] == 0.95 and unadjusted["method"] == "newcombe"
    assert unadjusted["adjustment"] == "none: per comparison"
    assert fields["diff_simultaneous_ci_low", "diff_simultaneous_ci_high"]["adjustment"] == method
    for arm in data["arms"][1:]:
        assert arm["diff_ci_unadjusted"]["level"] == 0.95
        simultaneous = arm["diff_ci_simultaneous"]
        if simultaneous is not None:
            assert simultaneous["adjustment"] == method and simultaneous["family_size"] == 2
            assert simultaneous["level"] == arm["simultaneous_level"]
    if method == "bonferroni":  # every comparison gets one, at 1 − 0.05/2
        low, high = confint_proportions_2indep(45, 1000, 36, 1200, method="newcomb", alpha=0.025)
        gain = data["arms"][1]["diff_ci_simultaneous"]
        assert (gain["low"], gain["high"]) == pytest.approx((low, high), abs=1e-12)


def test_no_correction_names_no_family_interval(tmp_path: Path) -> None:
    options = ("--control", "control", "--correction", "none", "--format", "json")
    data = json.loads(run(tmp_path, GOOD, *options)[1])
    assert data["family"]["comparisons"] == 2 and data["simultaneous"] is None
    assert all(arm["diff_ci_simultaneous"] is None for arm in data["arms"])
    assert [item["fields"][0] for item in data["intervals"]] == [
        "rate_ci_low", "diff_ci_low", "relative_risk_ci_low", "odds_ratio_ci_low",
    ]  # fmt: skip


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
