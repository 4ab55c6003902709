"""Benchmark: simulate the 8-arm organ-donation replica at BIT scale, then analyse it.

    .venv/bin/python bench/analyze_1m.py [--visits 1100000[,100000...]] [--locations N]
                                         [--languages N] [--postgres URL] [--dir DIR]
                                         [--keep] [--reuse] [--repeat 3] [--tracemalloc]

For each number of visits the event log is simulated once (``nudgelab simulate``) into a SQLite
file in ``--dir`` or, with ``--postgres URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1/
test``), into a schema ``nudgelab_bench_<visits>_<locations>x<languages>`` that the bench
creates in that database and drops at the end. Then, ``--repeat`` times each:

- ``analyze``: the whole ``nudgelab analyze`` process (wall time from start to exit, and its
  peak resident set size from ``resource.getrusage``);
- ``counting``: in a process of its own, :func:`analysis.counts.load_counts` (the one pass over
  the event log that yields the cells and the data-quality tally) and
  :func:`analysis.checks.read_quality`, each timed in-process.

Medians are printed with every run, the number of events and the machine's load average; the
CPU seconds of each process are printed too, as a busy shared machine inflates them much less
than the wall times (on PostgreSQL the server's CPU time is not included). With several
numbers of visits the last lines compare the counting time with the number of events (time
ratio / events ratio: 1 is linear growth).
``--tracemalloc`` also traces Python allocations (which slows Python code several-fold, so time
and memory are best measured in separate runs). Not part of the test suite.

``--locations N`` and ``--languages N`` (N > 1) run a multi-site variant: the same trial with N
locations (visits spread evenly, the same illustrative figure at each) and N languages (copies of
the English texts under other language codes), written to the working directory. The cell table
then has that many times more strata: 30 locations and 4 languages give about 415,000 cells.
``--keep`` keeps the databases (and reports); ``--reuse`` analyses a database kept by an earlier
run with the same options instead of simulating again.

The true registration rates are illustrative, in the range Sallis, Harper & Sanders (2018,
Trials 19:513) report (2.3 % under control, about 3.2 % for reciprocity); they are not the
published per-arm rates, most of which are not published.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "experiments" / "trials" / "organ-donation-2013.yaml"
TRIAL_ID = "organ-donation-2013"
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
    media = TRIAL.with_suffix("")  # the pictures, whose paths are relative to the trial file
    if media.is_dir():
        shutil.copytree(media, work / media.name, dirs_exist_ok=True)
    return path


# -- child processes ---------------------------------------------------------------------------


def _cost(seconds: dict[str, float], traced: bool) -> dict[str, float]:
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    peak = tracemalloc.get_traced_memory()[1] if traced else float("nan")
    return {**seconds, "rss_mib": rss_kib / 1024, "python_peak_mib": peak / 2**20}


def run_step(args: list[str], traced: bool) -> None:
    """Child process: run one nudgelab command in-process and print its cost as JSON."""
    from click.testing import CliRunner

    from nudgelab.cli import main

    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    seconds = time.perf_counter() - started
    print(result.output, file=sys.stderr)
    print(json.dumps({"exit": result.exit_code, **_cost({"seconds": seconds}, traced)}))


def run_count(url: str, trial_path: str, traced: bool) -> None:
    """Child process: time the counting pass and the quality figures in-process."""
    from analysis.checks import read_quality
    from analysis.counts import OutcomeSpec, load_counts
    from experiments.eventlog import make_engine
    from experiments.load import load_path

    trial = load_path(trial_path).trial
    assert trial is not None, trial_path
    outcomes = [OutcomeSpec(o.id, o.event) for o in trial.outcomes]
    engine = make_engine(url)
    if traced:
        tracemalloc.start()
    with engine.begin() as conn:
        started, cpu = time.perf_counter(), time.process_time()
        counts = load_counts(conn, TRIAL_ID, outcomes)
        counted, counted_cpu = time.perf_counter(), time.process_time()
        read_quality(conn, trial, counts)
        checked = time.perf_counter()
    engine.dispose()
    seconds = {
        "counting": counted - started,
        "counting_cpu": counted_cpu - cpu,
        "quality": checked - counted,
    }
    print(f"{len(counts.cells):,} cells, data hash {counts.data_hash[:16]}", file=sys.stderr)
    print(json.dumps({"exit": 0, **_cost(seconds, traced)}))


def child(command: list[str], label: str) -> tuple[float, dict[str, float], str]:
    """Run ``command`` (this script in a child role); return wall time, cost and stderr.

    The cost includes ``cpu``: the child's user and system CPU seconds, which a busy machine
    inflates much less than the wall time.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode:
        sys.exit(f"{label} failed:\n{completed.stderr}")
    cost = json.loads(completed.stdout.strip().splitlines()[-1])
    if cost["exit"]:
        sys.exit(f"{label} exited {cost['exit']}:\n{completed.stderr}")
    return wall, {**cost, "cpu": cpu}, completed.stderr


# -- databases ---------------------------------------------------------------------------------


@dataclass
class Target:
    """One event-log database of the bench: a SQLite file or a PostgreSQL schema."""

    url: str
    label: str
    schema: str | None = None
    admin_url: str | None = None
    path: Path | None = None

    def exists(self) -> bool:
        from sqlalchemy import create_engine, inspect

        if self.path is not None:
            return self.path.exists()
        engine = create_engine(str(self.admin_url))
        try:
            with engine.connect() as conn:
                return "events" in inspect(conn).get_table_names(schema=self.schema)
        finally:
            engine.dispose()

    def create(self) -> None:
        if self.schema is not None:
            self._admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            self._admin(f'CREATE SCHEMA "{self.schema}"')
        elif self.path is not None:
            for old in self.path.parent.glob(self.path.name + "*"):
                old.unlink()

    def drop(self) -> None:
        if self.schema is not None:
            self._admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        elif self.path is not None:
            for old in self.path.parent.glob(self.path.name + "*"):
                old.unlink()

    def size_mib(self) -> float:
        if self.path is not None:
            files = self.path.parent.glob(self.path.name + "*")
            return sum(p.stat().st_size for p in files) / 2**20
        from sqlalchemy import create_engine, text

        engine = create_engine(str(self.admin_url))
        query = (
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema "
            "AND c.relkind = 'r'"
        )
        with engine.connect() as conn:
            size = conn.execute(text(query), {"schema": self.schema}).scalar_one()
        engine.dispose()
        return float(size) / 2**20

    def events(self) -> int:
        from sqlalchemy import func, select

        from experiments.eventlog import events, make_engine

        engine = make_engine(self.url)
        with engine.connect() as conn:
            number = conn.execute(select(func.count()).select_from(events)).scalar_one()
        engine.dispose()
        return int(number)

    def _admin(self, statement: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(str(self.admin_url))
        with engine.begin() as conn:
            conn.execute(text(statement))
        engine.dispose()


def target(options: argparse.Namespace, work: Path, visits: int) -> Target:
    strata = f"{options.locations}x{options.languages}"
    if options.postgres:
        schema = f"nudgelab_bench_{visits}_{strata}"
        separator = "&" if "?" in options.postgres else "?"
        url = f"{options.postgres}{separator}options=-csearch_path%3D{schema}"
        return Target(url, f"PostgreSQL schema {schema}", schema=schema, admin_url=options.postgres)
    path = work / f"organ-donation-{visits}-{strata}.db"
    return Target(f"sqlite:///{path}", f"SQLite {path}", path=path)


# -- the bench ---------------------------------------------------------------------------------


def _median(values: list[float]) -> str:
    runs = ", ".join(f"{v:.2f}" for v in values)
    return f"{statistics.median(values):6.2f} s (runs {runs})"


def bench_size(options: argparse.Namespace, work: Path, visits: int) -> dict[str, float]:
    """Simulate (unless reused) and measure one database; return the medians."""
    base = [sys.executable, __file__]
    traced = ["--tracemalloc"] if options.tracemalloc else []
    db = target(options, work, visits)
    trial = trial_file(options.locations, options.languages, work)
    if options.reuse and db.exists():
        print(f"reusing {db.label}")
    else:
        strata = f"{options.locations} location(s), {options.languages} language(s)"
        print(f"{visits:,} visits of {TRIAL.name} ({strata}) into {db.label}")
        db.create()
        args = ["simulate", str(trial), "--visits", str(visits), "--rates", RATES]
        args += ["--seed", "2013", "--db", db.url]
        wall, cost, _ = child([*base, "--step", json.dumps(args), *traced], "simulate")
        print(f"simulate  wall {wall:7.1f} s  peak RSS {cost['rss_mib']:6.0f} MiB")
    events = db.events()
    print(f"database  {db.size_mib():,.0f} MiB, {events:,} events")
    analyze = ["analyze", TRIAL_ID, "--db", db.url, "--out", str(work / f"report-{visits}")]
    walls, cpus, rss, peaks, counting, counting_cpu, quality = [], [], [], [], [], [], []
    output = ""
    for _ in range(options.repeat):
        wall, cost, output = child([*base, "--step", json.dumps(analyze), *traced], "analyze")
        walls.append(wall)
        cpus.append(cost["cpu"])
        rss.append(cost["rss_mib"])
        peaks.append(cost["python_peak_mib"])
        count = json.dumps([db.url, str(trial)])
        _, cost, _ = child([*base, "--count", count, *traced], "counting")
        counting.append(cost["counting"])
        counting_cpu.append(cost["counting_cpu"])
        quality.append(cost["quality"])
    print(f"analyze   whole process {_median(walls)}  peak RSS {max(rss):.0f} MiB")
    print(f"          its CPU time  {_median(cpus)}")
    if options.tracemalloc:
        print(f"          peak Python allocations {max(peaks):.0f} MiB")
    print(f"counting  load_counts   {_median(counting)}")
    print(f"          its CPU time  {_median(counting_cpu)} (this process; not the server's)")
    print(f"quality   read_quality  {_median(quality)}")
    print("\n".join("    " + line for line in output.strip().splitlines()[-14:]))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not options.keep:
        db.drop()
    return {"events": events, "counting": statistics.median(counting)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--visits",
        default="1100000",
        help="number of visits, or several separated by commas (default: 1100000)",
    )
    parser.add_argument("--locations", type=int, default=1, help="locations (default: 1)")
    parser.add_argument(
        "--languages", type=int, default=1, choices=range(1, 2 + len(EXTRA_LANGUAGES))
    )
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL database to bench in")
    parser.add_argument("--dir", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the databases and reports")
    parser.add_argument("--reuse", action="store_true", help="analyse databases kept earlier")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--count", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.step:
        run_step(json.loads(options.step), options.tracemalloc)
        return
    if options.count:
        run_count(*json.loads(options.count), options.tracemalloc)
        return
    sizes = [int(part.replace("_", "")) for part in options.visits.split(",")]
    work = options.dir or Path(tempfile.mkdtemp(prefix="nudgelab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = [bench_size(options, work, visits) for visits in sizes]
    for small, large in itertools.pairwise(results):
        events = large["events"] / small["events"]
        seconds = large["counting"] / small["counting"]
        print(
            f"scaling   {small['events']:,} -> {large['events']:,} events (x{events:.1f}): "
            f"counting x{seconds:.1f}, i.e. {seconds / events:.2f} x linear"
        )
    if not options.keep and options.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
