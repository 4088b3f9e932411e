"""Time to quality: the default sweep against what a competent user would run instead, on the
same machine, at the spec's own budget (issue #15, targets 1 and 2, and the sweep's timeline).

Variants, each a whole subprocess (wall time includes imports and start-up; memory is the peak
of the process tree), run for every search seed S, interleaved (seed 0: sweep, optuna1, optuna2,
replay; seed 1: ...), so a slow spell of the machine hits every variant alike:

- ``sweep``    ``sweep run SPEC --set search.seed=S`` with its MLflow store and storage in a work
               folder; registration included. Scores and per-trial records from its MLflow store.
- ``optuna1``  plain Optuna in one process (``benchmarks.plain_optuna --pruner sh``): TPE seeded
               S, successive halving at the spec's ASHA grace period and reduction factor, early
               stopping with the spec's patience, the spec's initial points enqueued.
- ``optuna2``  two such processes sharing one Optuna ``JournalStorage`` file (TPE seeds S and
               S+1000), num_samples trials in all; the study is created and its initial points
               enqueued before both start (counted in the wall). Each scores its own best model
               on the test split; the better one by the objective is the variant's result. Memory:
               the sum of both trees' peaks.
- ``replay``   the sweep's own trials (same seed) trained again one after another in one plain
               process, each for exactly the epochs it trained in the sweep (no early stopping,
               no pruning): the same work without Ray and without concurrency.

Reported: per variant the medians over seeds of wall, best validation value and test value;
the ratios of medians sweep/optuna2 (target <= 0.8) and sweep/optuna1 (<= 0.55); the sweep's
validation shortfall against each peer (<= 1 %); sweep/replay wall (<= 0.6) and the concurrency
tax, sum of the sweep's ``trial_time_s`` over the replay's fit times minus 1 (<= 0.10).

The sweep's timeline (each seed) comes from its MLflow store: parent run start and end, each
child run's start, its close (the timestamp of its final metrics), each epoch's metric
timestamp, and the process's launch and exit. Trials are assigned to the ``max_concurrent``
worker slots by overlap; the summary gives start-up, each slot's busy fraction and idle gaps,
the tail (last trial end to exit, registration included) and epoch times alone and with another
trial running. A Gantt chart per seed is saved next to the JSON.

    python -m benchmarks.time_to_quality                       # abalone default spec, 3 seeds
    python -m benchmarks.time_to_quality --seeds 1 --trials 4 --max-epochs 12 --keep

Writes ``--json`` (default ``benchmarks/results/time_to_quality.json``) with the machine, the
settings, every run's raw numbers and the summary; a markdown table beside it (``.md``) and
``<stem>-timeline-s<SEED>.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from benchmarks.bench_sweep import (
    Row,
    Settings,
    VariantFailed,
    fill_process_stats,
    read_sweep_store,
    run_in,
    sweep_command,
)
from benchmarks.measure import Measured, machine_info
from benchmarks.spec_data import DEFAULT_SPEC, REPO, spec_path
from benchmarks.timeline import (
    read_sweep_record,
    save_gantt,
    span,
    summarise_timeline,
    timeline_lines,
    tune_epoch_times,
    use_worker_times,
)
from sweeps.errors import UserError

if TYPE_CHECKING:
    from sweeps.config.spec import SweepSpec

DEFAULT_JSON = REPO / "benchmarks" / "results" / "time_to_quality.json"
VARIANTS = ("sweep", "optuna1", "optuna2", "replay")
PEERS = ("optuna1", "optuna2")
OPTUNA2_SEED_OFFSET = 1000
TIMEOUT_S = 7200.0
TABLE_WIDTH = 160
#: Targets of issue #15: the largest value each derived number may take.
TARGETS = {
    "sweep_over_optuna2": 0.8,
    "sweep_over_optuna1": 0.55,
    "val_shortfall_vs_optuna1": 0.01,
    "val_shortfall_vs_optuna2": 0.01,
    "sweep_over_replay": 0.6,
    "concurrency_tax": 0.10,
}

console = Console(stderr=True, highlight=False)


@dataclass
class Bench:
    """What every variant of every seed shares: the spec, its overrides and the work folder."""

    spec_path: Path
    spec: SweepSpec  # with ``overrides`` applied
    overrides: list[str]  # ``--set`` overrides given to every variant
    root: Path
    timeout_s: float
    cores: int

    def settings(self, seed: int) -> Settings:
        """``bench_sweep`` settings for the helpers it shares, in this seed's folder (short:
        Ray's socket paths under it have a length limit)."""
        spec = self.spec
        return Settings(
            spec=self.spec_path,
            trials=spec.search.num_samples,
            epochs=plain_max_epochs(spec),
            concurrency=spec.search.max_concurrent,
            overhead_trials=0,
            timeout_s=self.timeout_s,
            root=self.root / f"s{seed}",
            cores=self.cores,
            experiment=spec.experiment_name,
            objective=spec.objective,
            test_metric=spec.champion_objective.metric,
            task="",
        )


@dataclass
class Run:
    """One variant at one seed: its process numbers, scores and anything else it measured."""

    variant: str
    seed: int
    ok: bool = True
    wall_s: float | None = None
    best_val: float | None = None
    test_value: float | None = None
    trials: int | None = None
    epochs_trained: int | None = None
    compute_s: float | None = None  # trial fit seconds (the sweep: sum of trial_time_s)
    peak_rss_mb: float | None = None
    peak_pss_mb: float | None = None
    max_processes: int | None = None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def plain_max_epochs(spec: SweepSpec) -> int:
    """The most epochs a trial trains: the ``epochs`` constant, capped by ASHA's ``max_t``."""
    from benchmarks.plain_optuna import max_epochs

    return max_epochs(spec, "sh" if spec.search.scheduler is not None else "none")


def budget_overrides(spec: SweepSpec, trials: int | None, epochs: int | None) -> list[str]:
    """``--set`` overrides for ``--trials`` and ``--max-epochs``: trial count; the ``epochs``
    constant and ASHA's ``max_t`` (its grace period lowered to fit, if need be)."""
    out = [] if trials is None else [f"search.num_samples={trials}"]
    if epochs is not None:
        out.append(f"search.space.epochs={epochs}")
        sched = spec.search.scheduler
        if sched is not None:
            out.append(f"search.scheduler.max_t={epochs}")
            if sched.grace_period > epochs:
                out.append(f"search.scheduler.grace_period={epochs}")
    return out


def fill(run: Run, measured: Measured) -> Run:
    """Wall time and process-tree memory of ``measured`` into ``run`` (via ``bench_sweep``)."""
    row = fill_process_stats(Row(run.variant), measured)
    run.wall_s, run.peak_rss_mb, run.peak_pss_mb = row.wall_s, row.peak_rss_mb, row.peak_pss_mb
    run.max_processes = row.max_processes
    run.notes = row.notes
    return run


# ---------------------------------------------------------------- the sweep


def run_sweep(bench: Bench, seed: int) -> Run:
    """``sweep run`` at ``seed``; scores and per-trial records from its MLflow store, and its
    timeline."""
    settings = bench.settings(seed)
    work = settings.root / "sweep"
    store = f"sqlite:///{work / 'mlflow.db'}"
    sets = [*bench.overrides, f"search.seed={seed}", f"tracking.uri={store}"]
    sets.append(f"storage={work / 'results'}")
    launched = time.time()
    measured = run_in(settings, "sweep", sweep_command(bench.spec_path, sets))
    run = fill(Run("sweep", seed), measured)
    spec = bench.spec
    totals = read_sweep_store(
        store, spec.experiment_name, spec.objective.metric, spec.champion_objective.metric
    )
    run.best_val, run.test_value = totals["best_val"], totals["test_value"]
    run.trials, run.epochs_trained = totals["trials"], totals["epochs_trained"]
    run.compute_s = totals["compute_s"]
    record = read_sweep_record(store, spec)
    record.update(launch=launched, exit=launched + measured.wall_s)
    use_worker_times(record["trials"], tune_epoch_times(work / "results"))
    run.details.update(status=totals["status"], trial_records=record["trials"])
    run.details["timeline"] = summarise_timeline(record, spec.search.max_concurrent)
    run.details["raw_times"] = {k: v for k, v in record.items() if k != "trials"}
    return run


# ---------------------------------------------------------------- plain Optuna peers


def plain_command(bench: Bench, seed: int, sampler_seed: int, out: Path, *more: str) -> list[str]:
    """``python -m benchmarks.plain_optuna`` on the bench's spec and overrides at ``seed``."""
    sets = [*bench.overrides, f"search.seed={seed}"]
    return [
        sys.executable,
        "-m",
        "benchmarks.plain_optuna",
        f"--spec={bench.spec_path}",
        f"--out={out}",
        f"--sampler-seed={sampler_seed}",
        *(arg for s in sets for arg in ("--set", s)),
        *more,
    ]


def pruner_flag(spec: SweepSpec) -> list[str]:
    """Successive halving when the spec has ASHA; no pruning otherwise."""
    return ["--pruner", "sh" if spec.search.scheduler is not None else "none"]


def run_optuna1(bench: Bench, seed: int) -> Run:
    """Plain Optuna with successive halving, one process."""
    settings = bench.settings(seed)
    out = settings.root / "optuna1" / "result.json"
    cmd = plain_command(bench, seed, seed, out, *pruner_flag(bench.spec))
    run = fill(Run("optuna1", seed), run_in(settings, "optuna1", cmd))
    return _with_result(run, json.loads(out.read_text()))


def _with_result(run: Run, result: dict[str, Any]) -> Run:
    run.best_val, run.test_value = result["best_val"], result["test_value"]
    run.trials, run.epochs_trained = result["trials"], result["epochs_trained"]
    run.compute_s = result["compute_s"]
    run.details.update(
        per_trial=result["per_trial"],
        best_config=result["best_config"],
        inner_wall_s=result["inner_wall_s"],
        surplus_trials=result.get("surplus_trials", 0),
    )
    return run


def run_optuna2(bench: Bench, seed: int) -> Run:
    """Two plain Optuna processes on one journal-file study; wall from creating the study to
    both processes' exit."""
    from benchmarks.plain_optuna import prepare_study

    settings = bench.settings(seed)
    work = settings.root / "optuna2"
    work.mkdir(parents=True, exist_ok=True)
    storage = f"journal:{work / 'study.journal'}"
    seeds = (seed, seed + OPTUNA2_SEED_OFFSET)
    outs = [settings.root / f"optuna2-{i}" / "result.json" for i in range(len(seeds))]
    cmds = [
        plain_command(bench, seed, s, out, *pruner_flag(bench.spec), f"--storage={storage}")
        for s, out in zip(seeds, outs, strict=True)
    ]
    started = time.perf_counter()
    prepare_study(bench.spec, storage)
    prepared_s = time.perf_counter() - started
    with ThreadPoolExecutor(len(cmds)) as pool:
        jobs = [
            pool.submit(_timed_run_in, settings, f"optuna2-{i}", cmd) for i, cmd in enumerate(cmds)
        ]
        finished = [job.result() for job in jobs]
    run = Run("optuna2", seed, wall_s=max(end for _, end in finished) - started)
    results = [json.loads(out.read_text()) for out in outs]
    return _combine(run, [m for m, _ in finished], results, bench.spec, prepared_s)


def _timed_run_in(settings: Settings, name: str, cmd: list[str]) -> tuple[Measured, float]:
    """``run_in`` and the ``perf_counter`` moment its process exited."""
    started = time.perf_counter()
    measured = run_in(settings, name, cmd)
    return measured, started + measured.wall_s


def _combine(
    run: Run,
    measured: list[Measured],
    results: list[dict[str, Any]],
    spec: SweepSpec,
    prepared_s: float,
) -> Run:
    """One run from the processes sharing a study: scores of the process with the better best
    value; trials, epochs and compute summed; memory summed over the trees' peaks."""
    objective = spec.objective
    best = min(results, key=lambda r: objective.key(r["best_val"]))
    run.best_val, run.test_value = best["best_val"], best["test_value"]
    run.trials = sum(r["trials"] for r in results)
    run.epochs_trained = sum(r["epochs_trained"] for r in results)
    run.compute_s = sum(r["compute_s"] for r in results)
    rows = [fill_process_stats(Row("optuna2"), m) for m in measured]
    run.peak_rss_mb = _sum_or_none(r.peak_rss_mb for r in rows)
    run.peak_pss_mb = _sum_or_none(r.peak_pss_mb for r in rows)
    run.max_processes = sum(r.max_processes or 0 for r in rows)
    run.notes = "; ".join(r.notes for r in rows if r.notes)
    run.details.update(
        prepare_study_s=prepared_s,
        process_wall_s=[m.wall_s for m in measured],
        surplus_trials=sum(r.get("surplus_trials", 0) for r in results),
        processes=[{k: v for k, v in r.items() if k != "best_config"} for r in results],
        best_config=best["best_config"],
    )
    return run


def _sum_or_none(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


# ---------------------------------------------------------------- replay


def replay_trials(records: Sequence[dict[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's trials as ``{"name", "config", "epochs"}`` for ``plain_optuna --replay``:
    searched values parsed back from the child runs' params into the space's types, constants
    from the spec; trials that trained no epoch are left out."""
    from sweeps.search.warm_start import parse_params

    constants = {n: p.to_tune() for n, p in spec.search.space.items() if not p.searched}
    out = []
    for record in records:
        if record["epochs_trained"] < 1:
            continue
        searched = parse_params(record["params"], spec)
        if searched is None:
            raise VariantFailed(f"{record['name']}: its params do not fit the spec's space")
        config = {**constants, **searched}
        out.append({"name": record["name"], "config": config, "epochs": record["epochs_trained"]})
    return out


def run_replay(bench: Bench, seed: int, sweep: Run | None) -> Run:
    """The sweep's trials of the same seed, one after another in one plain process."""
    if sweep is None or not sweep.ok:
        raise VariantFailed("replay needs the sweep of the same seed, which did not succeed")
    settings = bench.settings(seed)
    work = settings.root / "replay"
    work.mkdir(parents=True, exist_ok=True)
    records = sweep.details["trial_records"]
    trials_file = work / "trials.json"
    trials_file.write_text(json.dumps(replay_trials(records, bench.spec), indent=2))
    out = work / "result.json"
    cmd = plain_command(bench, seed, seed, out, f"--replay={trials_file}")
    run = fill(Run("replay", seed), run_in(settings, "replay", cmd))
    result = json.loads(out.read_text())
    run.best_val, run.trials = result["best_val"], result["trials"]
    run.epochs_trained, run.compute_s = result["epochs_trained"], result["fit_s_total"]
    trial_time = sum(r["trial_time_s"] or 0.0 for r in records if r["epochs_trained"] >= 1)
    run.details.update(
        per_trial=result["per_trial"],
        inner_wall_s=result["inner_wall_s"],
        sweep_trial_time_s=trial_time,
        sweep_over_replay=ratio(sweep.wall_s, run.wall_s),
        concurrency_tax=tax(trial_time, run.compute_s),
        epoch_tax=epoch_tax(records, result["per_trial"]),
    )
    return run


def epoch_tax(
    records: Sequence[dict[str, Any]], replayed: Sequence[dict[str, Any]]
) -> float | None:
    """The concurrency tax on epochs alone: the sweep's time from each trial's first epoch
    report to its last, summed, over the same in the replay, minus 1. Unlike
    ``concurrency_tax`` it leaves out each trial's start (a new worker's TensorFlow import,
    the model build, the first epoch's tracing)."""
    names = {t["name"] for t in replayed}
    sweep = sum(span(r["epoch_stamps"]) for r in records if r["name"] in names)
    return tax(sweep, sum(span(t.get("epoch_ends_s", [])) for t in replayed))


# ---------------------------------------------------------------- timeline (pure)


# ---------------------------------------------------------------- summary (pure)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def tax(sweep_s: float | None, alone_s: float | None) -> float | None:
    """How much longer the same trials took in the sweep than alone: ``sweep / alone - 1``."""
    r = ratio(sweep_s, alone_s)
    return None if r is None else r - 1


def shortfall(ours: float | None, peer: float | None, mode: str) -> float | None:
    """How much worse ``ours`` is than ``peer``, relative to ``peer`` (negative: better)."""
    if ours is None or peer is None or peer == 0:
        return None
    worse = ours - peer if mode == "min" else peer - ours
    return worse / abs(peer)


def median_of(values: Sequence[float | None]) -> float | None:
    """Median of the values present, None if none is."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: Sequence[Run], mode: str) -> dict[str, Any]:
    """Per variant the medians over seeds of wall, best value, test value (and the others);
    then the ratios of medians and the derived numbers the targets are set on."""
    variants: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r.variant for r in runs):
        mine = [r for r in runs if r.variant == name]
        ok = [r for r in mine if r.ok]
        variants[name] = {
            "runs": len(mine),
            "ok": len(ok),
            "walls_s": [r.wall_s for r in ok],
            **{
                key: median_of([getattr(r, key) for r in ok])
                for key in (
                    "wall_s",
                    "best_val",
                    "test_value",
                    "trials",
                    "epochs_trained",
                    "compute_s",
                    "peak_rss_mb",
                    "peak_pss_mb",
                )
            },
        }
    return {"variants": variants, "derived": derived(variants, runs, mode)}


def derived(
    variants: dict[str, dict[str, Any]], runs: Sequence[Run], mode: str
) -> dict[str, float | None]:
    """Ratios of the medians (sweep over each peer: wall; validation shortfall) and the
    replay's medians (sweep/replay wall, concurrency tax)."""

    def med(name: str, key: str) -> float | None:
        return variants.get(name, {}).get(key)

    out: dict[str, float | None] = {}
    for peer in PEERS:
        out[f"sweep_over_{peer}"] = ratio(med("sweep", "wall_s"), med(peer, "wall_s"))
        out[f"val_shortfall_vs_{peer}"] = shortfall(
            med("sweep", "best_val"), med(peer, "best_val"), mode
        )
        out[f"test_shortfall_vs_{peer}"] = shortfall(
            med("sweep", "test_value"), med(peer, "test_value"), mode
        )
    replays = [r for r in runs if r.variant == "replay" and r.ok]
    out["sweep_over_replay"] = median_of([r.details.get("sweep_over_replay") for r in replays])
    out["concurrency_tax"] = median_of([r.details.get("concurrency_tax") for r in replays])
    out["epoch_tax"] = median_of([r.details.get("epoch_tax") for r in replays])
    return out


def targets_met(derived_values: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    """Each target of :data:`TARGETS` with its value and whether the value is within it (None:
    not measured), then the other derived values (no target)."""
    out = {}
    for key in [*TARGETS, *(k for k in derived_values if k not in TARGETS)]:
        value, limit = derived_values.get(key), TARGETS.get(key)
        met = None if value is None or limit is None else value <= limit
        out[key] = {"value": value, "target": limit, "met": met}
    return out


# ---------------------------------------------------------------- report


def _cell(value: Any, fmt: str = "{:.2f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return fmt.format(value) if isinstance(value, int | float) else str(value)


def _wall_cell(summary: dict[str, Any]) -> str:
    walls = [w for w in summary["walls_s"] if w is not None]
    text = _cell(summary["wall_s"], "{:.1f}")
    return text if len(walls) < 2 else f"{text} ({min(walls):.1f}-{max(walls):.1f})"


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the variants table (medians over seeds)."""
    header = [
        "variant",
        "ok/runs",
        "wall s (range)",
        "best val",
        "test",
        "trials",
        "epochs",
        "compute s",
        "peak RSS MB",
        "peak PSS MB",
    ]
    rows = []
    for name, v in summary["variants"].items():
        rows.append(
            [
                name,
                f"{v['ok']}/{v['runs']}",
                _wall_cell(v),
                _cell(v["best_val"], "{:.4f}"),
                _cell(v["test_value"], "{:.4f}"),
                _cell(v["trials"], "{:.0f}"),
                _cell(v["epochs_trained"], "{:.0f}"),
                _cell(v["compute_s"], "{:.1f}"),
                _cell(v["peak_rss_mb"], "{:.0f}"),
                _cell(v["peak_pss_mb"], "{:.0f}"),
            ]
        )
    return header, rows


def target_rows(targets: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Cells of the targets table: name, value, limit, met."""
    return [
        [
            k,
            _cell(t["value"], "{:.3f}"),
            "-" if t["target"] is None else f"<= {t['target']}",
            _cell(t["met"]),
        ]
        for k, t in targets.items()
    ]


def rich_tables(summary: dict[str, Any], targets: dict[str, dict[str, Any]], title: str) -> list:
    """The variants table and the targets table."""
    header, rows = table_rows(summary)
    variants = Table(title=title)
    for i, name in enumerate(header):
        variants.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        variants.add_row(*row)
    goals = Table(title="targets (ratios of medians; shortfall: relative, + is worse)")
    for i, name in enumerate(("derived", "value", "target", "met")):
        goals.add_column(name, justify="left" if i == 0 else "right")
    for row in target_rows(targets):
        goals.add_row(*row)
    return [variants, goals]


def markdown(
    summary: dict[str, Any],
    targets: dict[str, dict[str, Any]],
    runs: Sequence[Run],
    first_timeline: list[str],
    title: str,
) -> str:
    """The tables as markdown: medians, targets, every run, the first sweep's timeline."""
    header, rows = table_rows(summary)
    parts = [
        f"{title}\n",
        _md(header, rows),
        "",
        _md(["derived", "value", "target", "met"], target_rows(targets)),
        "",
        "Every run:",
        "",
    ]
    run_header = ["variant", "seed", "ok", "wall s", "best val", "test", "trials", "epochs"]
    run_rows = [
        [
            r.variant,
            str(r.seed),
            _cell(r.ok),
            _cell(r.wall_s, "{:.1f}"),
            _cell(r.best_val, "{:.4f}"),
            _cell(r.test_value, "{:.4f}"),
            _cell(r.trials),
            _cell(r.epochs_trained),
        ]
        for r in runs
    ]
    parts.append(_md(run_header, run_rows))
    if first_timeline:
        parts += ["", "Timeline of the first sweep:", "", *(f"- {line}" for line in first_timeline)]
    return "\n".join(parts) + "\n"


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.time_to_quality",
        description="The default sweep against plain Optuna (1 and 2 processes) and a "
        "sequential replay of its own trials, at the spec's budget, over several seeds.",
    )
    parser.add_argument("--seeds", type=int, default=3, help="search seeds 0..N-1 (default 3)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma list from {','.join(VARIANTS)} (default: all; replay needs sweep)",
    )
    parser.add_argument(
        "--spec", default=str(DEFAULT_SPEC), help="spec file or shipped name (default abalone)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="spec override KEY=VALUE for every variant (repeatable)",
    )
    parser.add_argument("--trials", type=int, help="search.num_samples for every variant")
    parser.add_argument(
        "--max-epochs", type=int, help="epochs constant and ASHA max_t for every variant"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per process")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}")
    if "replay" in args.variants and "sweep" not in args.variants:
        parser.error("replay replays the sweep's trials: list sweep too")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    args.spec = spec_path(args.spec)
    if not args.spec.is_file():
        parser.error(f"--spec: no spec file {args.spec} (nor a shipped spec of that name)")
    return args


def run_variant(name: str, bench: Bench, seed: int, sweep: Run | None) -> Run:
    """One variant at one seed; a failure becomes a failed run instead of ending the bench."""
    console.print(f"[bold]seed {seed} {name}[/]: running...")
    started = time.perf_counter()
    try:
        run = run_replay(bench, seed, sweep) if name == "replay" else RUNNERS[name](bench, seed)
    except (VariantFailed, UserError, OSError, ValueError, KeyError, TypeError) as exc:
        console.print(f"[red]seed {seed} {name} failed[/]: {exc}")
        return Run(name, seed, ok=False, notes=str(exc).splitlines()[0] if str(exc) else "")
    console.print(
        f"[bold]seed {seed} {name}[/]: wall {_cell(run.wall_s, '{:.1f}')}s, best val "
        f"{_cell(run.best_val, '{:.4f}')}, test {_cell(run.test_value, '{:.4f}')} "
        f"(done in {time.perf_counter() - started:.1f}s)"
    )
    return run


RUNNERS: dict[str, Callable[[Bench, int], Run]] = {
    "sweep": run_sweep,
    "optuna1": run_optuna1,
    "optuna2": run_optuna2,
}


def load_bench(args: argparse.Namespace, root: Path, cores: int) -> Bench:
    """The spec with every override applied (``--set``, then ``--trials``/``--max-epochs``)."""
    from sweeps.config.spec import load_spec

    base = load_spec(args.spec, args.overrides)
    overrides = [*args.overrides, *budget_overrides(base, args.trials, args.max_epochs)]
    spec = load_spec(args.spec, overrides)
    return Bench(args.spec, spec, overrides, root, args.timeout, cores)


def run_all(bench: Bench, seeds: int, variants: list[str]) -> list[Run]:
    """Every variant for every seed, interleaved per seed."""
    if "optuna2" in variants:
        import optuna  # noqa: F401  (imported once, outside optuna2's measured study set-up)
    runs = []
    for seed in range(seeds):
        sweep = None
        for name in variants:
            run = run_variant(name, bench, seed, sweep)
            sweep = run if name == "sweep" else sweep
            runs.append(run)
    return runs


def charts(runs: Sequence[Run], json_path: Path) -> list[str]:
    """A Gantt chart per sweep run next to ``json_path``; the chart files' names."""
    names = []
    for run in runs:
        if run.variant != "sweep" or not run.ok:
            continue
        path = json_path.with_name(f"{json_path.stem}-timeline-s{run.seed}.png")
        record = {**run.details["raw_times"], "trials": []}
        save_gantt(run.details["timeline"], record, path, f"sweep timeline, seed {run.seed}")
        names.append(path.name)
    return names


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables; write the JSON, markdown and charts.

    Returns 0 if every run succeeded, else 1 (the files are written either way); 2 on a bad
    spec.
    """
    args = parse_args(argv)
    machine = machine_info()
    root = Path(tempfile.mkdtemp(prefix="ttq-"))
    try:
        bench = load_bench(args, root, machine["cores"])
    except UserError as exc:
        console.print(f"[red]--spec {args.spec}[/]: {exc}")
        return 2
    spec = bench.spec
    console.print(
        f"[bold]machine[/]: {machine['cpu_model']}, {machine['cores']} cores, load "
        f"{machine['load_avg_1m_at_start']}; [bold]spec[/]: {args.spec} "
        f"({spec.search.num_samples} trials, max_concurrent {spec.search.max_concurrent}, "
        f"overrides {bench.overrides or 'none'})"
    )
    try:
        runs = run_all(bench, args.seeds, args.variants)
        pictures = charts(runs, args.json)
    finally:
        if args.keep:
            console.print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(args, machine, bench, runs, pictures)
    return 0 if all(r.ok for r in runs) else 1


def report(
    args: argparse.Namespace,
    machine: dict[str, Any],
    bench: Bench,
    runs: list[Run],
    pictures: list[str],
) -> None:
    """Print the tables and the first sweep's timeline; write JSON and markdown."""
    spec = bench.spec
    summary = summarise(runs, spec.objective.mode)
    targets = targets_met(summary["derived"])
    title = (
        f"time to quality: {spec.name}, {spec.search.num_samples} trials, medians over "
        f"{args.seeds} seed(s) (best {spec.objective.metric}, {spec.champion_objective.metric})"
    )
    out = Console(highlight=False)
    out.width = out.width if out.is_terminal else TABLE_WIDTH
    for table in rich_tables(summary, targets, title):
        out.print(table)
    first = next((r for r in runs if r.variant == "sweep" and r.ok), None)
    lines = timeline_lines(first.details["timeline"]) if first else []
    if lines:
        out.print(f"[bold]timeline of the sweep, seed {first.seed}[/]")
        for line in lines:
            out.print("  " + line)
    payload = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "settings": {
            "spec": str(args.spec),
            "seeds": args.seeds,
            "variants": args.variants,
            "overrides": bench.overrides,
            "num_samples": spec.search.num_samples,
            "max_concurrent": spec.search.max_concurrent,
            "max_epochs": plain_max_epochs(spec),
            "metric": spec.objective.metric,
            "mode": spec.objective.mode,
            "test_metric": spec.champion_objective.metric,
            "optuna2_seed_offset": OPTUNA2_SEED_OFFSET,
        },
        "summary": summary,
        "targets": targets,
        "charts": pictures,
        "runs": [asdict(r) for r in runs],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_finite(payload), indent=2) + "\n")
    args.json.with_suffix(".md").write_text(markdown(summary, targets, runs, lines, title))
    console.print(f"results written to {args.json} (and .md, {len(pictures)} chart(s))")


if __name__ == "__main__":
    raise SystemExit(main())
