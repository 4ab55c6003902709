"""Benchmark: simulate the 8-arm organ-donation replica at BIT scale, then analyse it.

    .venv/bin/python bench/analyze_1m.py [--visits 1100000] [--locations N] [--languages N]
                                         [--dir DIR] [--keep] [--reuse] [--tracemalloc]

Each step runs in its own process (``nudgelab simulate`` and ``nudgelab analyze`` through the
CLI), so the peak memory printed is that step's alone: the peak resident set size from
``resource.getrusage``, and with ``--tracemalloc`` also the peak of Python allocations (which
slows Python code several-fold, so time and memory are best measured in separate runs). Prints
wall time, peak memory and the database size. Not part of the test suite.

``--locations N`` and ``--languages N`` (N > 1) run a multi-site variant: the same trial with N
locations (visits spread evenly, the same illustrative figure at each) and N languages (copies of
the English texts under other language codes), written to the working directory. The cell table
then has that many times more strata: 30 locations and 4 languages give about 415,000 cells.
``--reuse`` with ``--dir`` analyses a database kept (``--keep``) by an earlier run with the same
options instead of simulating again.

The true registration rates are illustrative, in the range Sallis, Harper & Sanders (2018,
Trials 19:513) report (2.3 % under control, about 3.2 % for reciprocity); they are not the
published per-arm rates, most of which are not published.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "experiments" / "trials" / "organ-donation-2013.yaml"
RATES = (
    "control=0.023,norm=0.025,norm_photo=0.022,norm_logo=0.024,loss=0.030,gain=0.027,"
    "reciprocity=0.032,intention_action=0.028"
)


#: Language codes added by ``--languages`` (the replica itself is English only).
EXTRA_LANGUAGES = ("nl", "fr", "de", "pl", "es", "it", "pt")


def _copy_english(node: object, codes: list[str]) -> None:
    """Give every ``{en: ...}`` text mapping under ``node`` the same text in ``codes``."""
    if isinstance(node, dict):
        if "en" in node:
            node.update({code: node["en"] for code in codes})
        for value in node.values():
            _copy_english(value, codes)
    elif isinstance(node, list):
        for value in node:
            _copy_english(value, codes)


def trial_file(locations: int, languages: int, work: Path) -> Path:
    """The trial file to simulate: the replica itself, or a copy with more strata."""
    if locations <= 1 and languages <= 1:
        return TRIAL
    import yaml

    data = yaml.safe_load(TRIAL.read_text(encoding="utf-8"))
    if locations > 1:
        ids = [f"site-{i:02d}" for i in range(1, locations + 1)]
        data["locations"] = [{"id": i, "name": f"Simulated site {i[5:]}"} for i in ids]
        for figure in data.get("figures", {}).values():
            value = next(iter(figure["values"].values()))
            figure["values"] = dict.fromkeys(ids, value)
    if languages > 1:
        codes = list(EXTRA_LANGUAGES[: languages - 1])
        _copy_english(data, codes)
        data["languages"] = ["en", *codes]
    path = work / TRIAL.name  # the file name must match the trial id
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_step(args: list[str], traced: bool) -> None:
    """Child process: run one nudgelab command in-process and print its cost as JSON."""
    from click.testing import CliRunner

    from nudgelab.cli import main

    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else float("nan")
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(result.output, file=sys.stderr)
    print(
        json.dumps(
            {
                "exit": result.exit_code,
                "seconds": seconds,
                "rss_mib": rss_kib / 1024,
                "python_peak_mib": traced_peak / 2**20,
            }
        )
    )


def measure(label: str, args: list[str], traced: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--step", json.dumps(args)]
    command += ["--tracemalloc"] if traced else []
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if completed.returncode:
        sys.exit(f"{label} failed:\n{completed.stderr}")
    cost = json.loads(completed.stdout.strip().splitlines()[-1])
    if cost["exit"]:
        sys.exit(f"{label} exited {cost['exit']}:\n{completed.stderr}")
    print(
        f"{label:<9} wall {wall:7.1f} s (in-process {cost['seconds']:.1f} s)  "
        f"peak RSS {cost['rss_mib']:6.0f} MiB"
        + (f"  peak Python allocations {cost['python_peak_mib']:6.0f} MiB" if traced else "")
    )
    print("\n".join("    " + line for line in completed.stderr.strip().splitlines()[-14:]))
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1_100_000)
    parser.add_argument("--locations", type=int, default=1, help="locations (default: 1)")
    parser.add_argument(
        "--languages", type=int, default=1, choices=range(1, 2 + len(EXTRA_LANGUAGES))
    )
    parser.add_argument("--dir", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the report")
    parser.add_argument("--reuse", action="store_true", help="analyse the database in --dir")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.step:
        run_step(json.loads(options.step), options.tracemalloc)
        return
    work = options.dir or Path(tempfile.mkdtemp(prefix="nudgelab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "organ-donation.db"
    url = f"sqlite:///{db}"
    if options.reuse and db.exists():
        print(f"reusing {db}")
    else:
        trial = trial_file(options.locations, options.languages, work)
        strata = f"{options.locations} location(s), {options.languages} language(s)"
        print(f"{options.visits:,} visits of {TRIAL.name} ({strata}) into {db}")
        simulate = ["simulate", str(trial), "--visits", str(options.visits), "--rates", RATES]
        measure("simulate", [*simulate, "--seed", "2013", "--db", url], options.tracemalloc)
    size = sum(p.stat().st_size for p in work.glob("organ-donation.db*"))
    print(f"database  {size / 2**20:,.0f} MiB (with WAL)")
    analyze = ["analyze", "organ-donation-2013", "--db", url, "--out", str(work / "report")]
    measure("analyze", analyze, options.tracemalloc)
    print(f"report    {work / 'report' / 'report.html'}")
    if not options.keep and options.dir is None:
        shutil.rmtree(work)
    elif not options.keep:
        os.remove(db)


if __name__ == "__main__":
    main()
