"""``nudgelab simulate``, ``analyze`` and ``export`` as a user runs them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import analysis.report.figures as figures
from analysis.export import read_export
from experiments.eventlog import upgrade
from nudgelab.cli import main
from tests.factories import trial_yaml


@pytest.fixture
def trial_file(tmp_path: Path) -> Path:
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml())
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_simulate_analyze_export_and_analyze_the_export(
    db_url: str, trial_file: Path, tmp_path: Path
) -> None:
    out = run(
        "simulate",
        trial_file,
        "--visits",
        "400",
        "--rates",
        "control=0.05,gain=0.2",
        "--seed",
        "3",
        "--opt-out-rate",
        "0.1",  # enough opt-outs per arm that the export keeps the count
        "--db",
        db_url,
    )
    assert "simulated 400 visits of test-trial" in out
    out = run(
        "analyze",
        "test-trial",
        "--db",
        db_url,
        "--out",
        tmp_path / "r",
        "--correction",
        "bonferroni",
    )
    assert out.splitlines()[-1].startswith("wrote ")
    assert "primary outcome requested_contact:" in out
    for name in (
        "report.html",
        "report.md",
        "report.json",
        "figures/flow.png",
        "figures/forest.png",
    ):
        assert (tmp_path / "r" / name).stat().st_size > 0, name
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["transparency"]["deviations"][0]["actual"] == "bonferroni"
    assert data["flow"]["total"]["randomized"] == 400
    out = run("export", "test-trial", "--db", db_url, "--out", tmp_path / "new" / "e.csv")
    (tmp_path / "new" / "e.csv").rename(tmp_path / "e.csv")  # a missing folder is created
    assert "small cells merged below 10" in out
    out = run("analyze", trial_file, "--export", tmp_path / "e.csv", "--out", tmp_path / "x")
    exported = json.loads((tmp_path / "x" / "report.json").read_text())
    assert exported["flow"]["total"]["randomized"] == 400
    assert exported["transparency"]["looks"] == 2  # one analysis and the export


def test_an_export_with_a_suppressed_opt_out_count_is_not_analysed_as_zero(
    db_url: str, trial_file: Path, tmp_path: Path
) -> None:
    run(
        "simulate", trial_file, "--visits", "300", "--rates", "control=0.05,gain=0.2",
        "--seed", "4", "--opt-out-rate", "0.01", "--db", db_url,
    )  # fmt: skip
    run("export", "test-trial", "--db", db_url, "--out", tmp_path / "e.csv")
    exported = read_export(tmp_path / "e.csv")
    assert exported.suppressed.get("opted_out")  # a few opt-outs: the count is left empty
    result = CliRunner().invoke(
        main, ["analyze", str(trial_file), "--export", str(tmp_path / "e.csv"), "--out",
               str(tmp_path / "x")],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "opt-out count empty" in result.output and "--db URL" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x" / "report.json").exists()  # no estimate on a wrong denominator


def test_analyze_draws_each_figure_once_for_the_html_and_the_markdown(
    db_url: str, trial_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("simulate", trial_file, "--visits", "200", "--seed", "5", "--db", db_url)
    drawn: list[str] = []
    for name in ("flow_figure", "forest_figure"):
        original = getattr(figures, name)

        def counted(report, name=name, original=original):  # type: ignore[no-untyped-def]
            drawn.append(name)
            return original(report)

        monkeypatch.setattr(figures, name, counted)
    run("analyze", "test-trial", "--db", db_url, "--out", tmp_path / "r")
    assert sorted(drawn) == ["flow_figure", "forest_figure"]
    page = (tmp_path / "r" / "report.html").read_text()
    markdown = (tmp_path / "r" / "report.md").read_text()
    for file in ("flow.png", "forest.png"):
        png = (tmp_path / "r" / "figures" / file).read_bytes()
        assert base64.b64encode(png).decode("ascii") in page  # the same bytes in both
        assert f"(figures/{file})" in markdown


def test_errors_are_one_line_not_a_traceback(tmp_path: Path, trial_file: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(
        main, ["analyze", str(trial_file), "--db", url, "--out", str(tmp_path)]
    )
    assert result.exit_code == 1 and "nudgelab db upgrade" in result.output  # no schema
    upgrade(url)
    result = CliRunner().invoke(main, ["analyze", "nope", "--db", url, "--out", tmp_path])
    assert result.exit_code == 1
    assert "neither a trial file nor a trial loaded" in result.output
    result = CliRunner().invoke(
        main, ["analyze", str(trial_file), "--db", url, "--out", str(tmp_path)]
    )
    assert result.exit_code == 1 and "not in this database" in result.output
    result = CliRunner().invoke(main, ["analyze", str(trial_file), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "either --db URL or --export FILE" in result.output
    result = CliRunner().invoke(
        main, ["simulate", str(trial_file), "--visits", "5", "--rates", "gain=2", "--db", url]
    )
    assert result.exit_code == 1 and "between 0 and 1" in result.output
    assert "Traceback" not in result.output
