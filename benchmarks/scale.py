"""How the sweeper's fixed cost per trial and the driver's memory grow with the trial count.

For each N, a fresh ``sweep run`` of the default abalone spec with the zero-work family
(``benchmarks.zero_work``), N trials, 2 at a time, no scheduler, MLflow and storage in a
temporary folder; the run ends with exit code 1 (no model to register), as expected. Recorded
per N: wall time, the driver's own peak RSS (the ``sweep run`` process), the process tree's
peak RSS, and the child runs in MLflow (all, FINISHED). Then, on the largest store: the wall
time of ``sweep ls``, ``sweep status``, ``sweep best`` (median of 3 each), ``sweep --help`` and
``sweep validate``, each a whole process.

Marginal cost per trial between consecutive N: ``(wall_b - wall_a) / (b - a)``; flatness: the
last marginal cost over the first (1.0 is flat).

    python -m benchmarks.scale --json benchmarks/results/scale.json --trials 50,100,300,1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.table import Table

from benchmarks.bench_sweep import Settings, subprocess_env, sweep_command, sweep_overrides
from benchmarks.measure import machine_info, run_measured
from benchmarks.spec_data import DEFAULT_SPEC

ZERO_WORK = "trainable=benchmarks.zero_work:regression"
CONCURRENCY = 2
CLI_REPEATS = 3
TIMEOUT_S = 3600.0

console = Console(stderr=True, highlight=False)


@dataclass
class Point:
    """One ``sweep run`` of N zero-work trials."""

    trials: int
    wall_s: float
    exit_code: int
    driver_peak_rss_mb: float | None
    driver_cpu_s: float | None  # the driver's own CPU time: less sensitive to a busy machine
    tree_peak_rss_mb: float | None
    child_runs: int
    finished: int
    load_avg_1m: float  # the machine's load before the run


@dataclass
class _Root:
    """What :func:`benchmarks.bench_sweep.subprocess_env` reads of its settings."""

    root: Path


def count_children(db: Path) -> tuple[int, int]:
    """Child runs (runs with a parent) in the MLflow SQLite store ``db``: all, FINISHED."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT r.status, COUNT(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE t.key = 'mlflow.parentRunId' GROUP BY r.status"
        ).fetchall()
    by_status = dict(rows)
    return sum(by_status.values()), by_status.get("FINISHED", 0)


def run_point(root: Path, trials: int, seed: int | None, extra: Sequence[str] = ()) -> Point:
    """One fresh ``sweep run`` of ``trials`` zero-work trials in ``root/n<trials>`` (``extra``:
    more ``--set`` overrides)."""
    work = root / f"n{trials}"
    work.mkdir(parents=True)
    overrides = [*sweep_overrides(work, trials, 1, CONCURRENCY, "null"), ZERO_WORK]
    if seed is not None:
        overrides.append(f"search.seed={seed}")
    overrides += extra
    env = subprocess_env(cast(Settings, _Root(work)))
    cmd = sweep_command(DEFAULT_SPEC, overrides)
    load = os.getloadavg()[0]
    measured = run_measured(cmd, work, env, work / "output.log", TIMEOUT_S)
    if measured.timed_out or measured.returncode not in (0, 1):
        raise RuntimeError(f"{trials} trials: exit {measured.returncode}\n{measured.log_tail()}")
    runs, finished = count_children(work / "mlflow.db")
    return Point(
        trials,
        measured.wall_s,
        measured.returncode,
        measured.tree.root_peak_rss_mb,
        measured.tree.root_cpu_s,
        measured.tree.peak_rss_mb,
        runs,
        finished,
        round(load, 2),
    )


def time_commands(work: Path) -> dict[str, float]:
    """Whole-process wall time of the read-only commands on the store in ``work`` (median of
    :data:`CLI_REPEATS` for ``ls``, ``status``, ``best``; one run of ``--help``, ``validate``)."""
    env = subprocess_env(cast(Settings, _Root(work)))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    base = sweep_command(DEFAULT_SPEC, [])[:-2]  # the ``sweep`` command alone
    commands = {
        "ls": ([*base, "ls", "--tracking-uri", uri], CLI_REPEATS),
        "status": ([*base, "status", "--tracking-uri", uri], CLI_REPEATS),
        "best": ([*base, "best", "--tracking-uri", uri], CLI_REPEATS),
        "--help": ([*base, "--help"], 1),
        "validate": (
            [*base, "validate", str(DEFAULT_SPEC), "--set", ZERO_WORK, "--set",
             f"tracking.uri={uri}", "--set", f"storage={work / 'results'}"],
            1,
        ),
    }  # fmt: skip
    walls = {}
    for name, (cmd, repeats) in commands.items():
        times = []
        for i in range(repeats):
            log = work / f"cli-{name.strip('-')}-{i}.log"
            measured = run_measured(cmd, work, env, log, 300)
            if measured.returncode != 0:
                console.print(f"[red]{name}: exit {measured.returncode}[/]\n{measured.log_tail()}")
            times.append(measured.wall_s)
        walls[name] = statistics.median(times)
    return walls


def suggestion_costs(counts: Sequence[int], repeats: int = 5) -> dict[int, float]:
    """Seconds one suggestion of the default spec's searcher (its sampler and space, as the
    sweep asks them) takes with N finished trials in the study, median of ``repeats``; the
    study is filled with random-sampler trials first, which costs little."""
    import random

    import optuna

    from benchmarks.spec_data import DEFAULT_SPEC as SPEC
    from sweeps.config.spec import load_spec
    from sweeps.search.define_by_run import SpaceFunction
    from sweeps.search.samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(SPEC)
    space = SpaceFunction(spec.search.space)
    values = random.Random(0)
    study = optuna.create_study(direction=spec.objective.mode + "imize")
    sampler = make_sampler(spec.search)
    costs = {}
    done = 0
    for n in sorted(counts):
        study.sampler = optuna.samplers.RandomSampler(seed=n)
        for _ in range(done, n):
            trial = study.ask()
            space(trial)
            study.tell(trial, values.random())
        done = n + repeats
        study.sampler = sampler
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            trial = study.ask()
            space(trial)
            times.append(time.perf_counter() - started)
            study.tell(trial, values.random())
        costs[n] = statistics.median(times)
        console.print(f"  {spec.search.algorithm} suggestion at {n} trials: {costs[n]:.4f}s")
    return costs


def marginal_costs(points: list[Point]) -> list[dict[str, Any]]:
    """Seconds per trial between consecutive runs: ``(wall_b - wall_a) / (b - a)``, and the
    same for the driver's CPU time."""
    ordered = sorted(points, key=lambda p: p.trials)
    costs = []
    for a, b in zip(ordered, ordered[1:], strict=False):
        n = b.trials - a.trials
        cpu = None
        if a.driver_cpu_s is not None and b.driver_cpu_s is not None:
            cpu = (b.driver_cpu_s - a.driver_cpu_s) / n
        wall = (b.wall_s - a.wall_s) / n
        costs.append(
            {"from": a.trials, "to": b.trials, "s_per_trial": wall, "driver_cpu_s_per_trial": cpu}
        )
    return costs


def report(points: list[Point], marginal: list[dict[str, float]], cli: dict[str, float]) -> None:
    """The runs, marginal costs and command times as rich tables on stdout."""
    out = Console(highlight=False)
    runs = Table(title="zero-work sweeps (2 at a time, no scheduler)")
    columns = ("trials", "wall s", "driver CPU s", "driver peak RSS MB", "tree peak RSS MB")
    for column in (*columns, "child runs", "load"):
        runs.add_column(column, justify="right")
    for p in points:
        runs.add_row(
            str(p.trials),
            f"{p.wall_s:.1f}",
            f"{p.driver_cpu_s or 0:.1f}",
            f"{p.driver_peak_rss_mb or 0:.0f}",
            f"{p.tree_peak_rss_mb or 0:.0f}",
            f"{p.finished}/{p.child_runs} FINISHED",
            f"{p.load_avg_1m:.1f}",
        )
    out.print(runs)
    costs = Table(title="marginal cost per trial")
    for column in ("from", "to", "wall s/trial", "driver CPU s/trial"):
        costs.add_column(column, justify="right")
    for m in marginal:
        cpu = m["driver_cpu_s_per_trial"]
        costs.add_row(
            str(m["from"]),
            str(m["to"]),
            f"{m['s_per_trial']:.4f}",
            "-" if cpu is None else f"{cpu:.4f}",
        )
    out.print(costs)
    if cli:
        commands = Table(title=f"commands on the {max(p.trials for p in points)}-trial store")
        commands.add_column("command")
        commands.add_column("wall s", justify="right")
        for name, wall in cli.items():
            commands.add_row(f"sweep {name}", f"{wall:.2f}")
        out.print(commands)


def main(argv: list[str] | None = None) -> int:
    """Run the sweeps, time the commands, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="50,100,300,1000", help="comma list of N")
    parser.add_argument("--seed", type=int, default=None, help="search.seed (default: spec's)")
    parser.add_argument("--json", type=Path, default=None, help="results file")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another override for every sweep, e.g. search.algorithm=random (repeatable)",
    )
    parser.add_argument(
        "--suggest",
        default="",
        help="comma list of N: also time one suggestion of the spec's searcher at N trials "
        "(in this process; e.g. 100,1000,10000)",
    )
    parser.add_argument("--no-trials", action="store_true", help="skip the sweeps")
    parser.add_argument("--no-commands", action="store_true", help="skip the command timings")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    args = parser.parse_args(argv)
    counts = [] if args.no_trials else sorted({int(n) for n in args.trials.split(",") if n})
    machine = machine_info()
    root = Path(tempfile.mkdtemp(prefix="scale-"))
    points: list[Point] = []
    cli: dict[str, float] = {}
    try:
        for n in counts:
            console.print(f"[bold]{n} trials[/]: running...")
            points.append(run_point(root, n, args.seed, args.extra))
            console.print(f"  {points[-1]}")
        if counts and not args.no_commands:
            cli = time_commands(root / f"n{counts[-1]}")
    finally:
        if args.keep:
            console.print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    suggest = {int(n) for n in args.suggest.split(",") if n.strip()}
    suggestion_s = suggestion_costs(sorted(suggest)) if suggest else {}
    marginal = marginal_costs(points)
    flatness = (
        marginal[-1]["s_per_trial"] / marginal[0]["s_per_trial"] if len(marginal) > 1 else None
    )
    report(points, marginal, cli)
    if flatness is not None:
        console.print(f"flatness (last marginal / first): {flatness:.2f}")
    if args.json:
        payload: dict[str, Any] = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine,
            "settings": {"trials": counts, "seed": args.seed, "concurrency": CONCURRENCY,
                         "scheduler": None, "spec": str(DEFAULT_SPEC), "family": ZERO_WORK,
                         "extra": args.extra},
            "runs": [asdict(p) for p in points],
            "marginal": marginal,
            "flatness": flatness,
            "commands_s": cli,
            "suggestion_s": suggestion_s,
            "command": " ".join(["python -m benchmarks.scale", *(argv or sys.argv[1:])]),
        }  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
