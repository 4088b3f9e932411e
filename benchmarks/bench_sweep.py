"""Side-by-side speed run: the sweeper against plain sequential Optuna, on one machine.

Variants, run one after another:

- ``optuna``    plain Optuna in one process (``benchmarks.plain_optuna``), as a subprocess
- ``sweep``     ``sweep run`` with the same trials, epochs and seed, no scheduler
- ``asha``      the same with ASHA (``max_t`` = epochs, ``grace_period`` = min(5, epochs))
- ``overhead``  a zero-work trainable (``benchmarks.zero_work``) at n trials and at 1 trial:
                per-trial overhead = (wall_n - wall_1) / (n - 1)
- ``baselines`` non-neural models on the same split: ridge and tuned gradient boosting for
                regression (rows ``ridge``, ``gbm``), logistic regression and tuned gradient
                boosting for classification (rows ``logistic``, ``gbm``)

Any shipped spec or spec file (``--spec``, default the abalone spec); every score is the spec's
objective: ``best_val`` is the best value of ``search.metric`` (``val_rmse``, ``val_auc``, ...)
and ``test_value`` the test metric the sweep's champion rule uses (``test_rmse``,
``test_auc``, ...); each row names both (``metric``, ``test_metric``).

Wall times of subprocess variants include start-up (imports, Ray start, MLflow logging and
registration). Peak memory is summed over the whole process tree. With ``--repeat N`` the
variants run in N interleaved rounds (a, b, c, ..., a, b, c, ...), so a slow spell of the machine
hits every variant alike; each row is then the run with the median wall time, and the JSON keeps
every run's wall time (``details.wall_runs_s``).

    python -m benchmarks.bench_sweep --trials 12 --epochs 20 --repeat 3 --json results.json
    python -m benchmarks.bench_sweep --spec breast_cancer --trials 12 --epochs 20 --json bc.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from benchmarks.measure import Measured, machine_info, run_measured
from benchmarks.spec_data import DEFAULT_SPEC, REPO
from sweeps.errors import UserError
from trainable.contract import ModelFamily, Objective

if TYPE_CHECKING:
    from sweeps.config.spec import SweepSpec

DEFAULT_JSON = REPO / "benchmarks" / "results.json"
VARIANTS = ("optuna", "sweep", "asha", "overhead", "baselines")
COMPARED = ("optuna", "sweep", "asha")  # rows whose wall time is comparable to plain Optuna
ASHA_GRACE_PERIOD = 5
ZERO_WORK_MODULE = "benchmarks.zero_work"  # one zero-work family per task, named after it
TABLE_WIDTH = 160  # when stdout is not a terminal (rich would assume 80 columns)

console = Console(stderr=True, highlight=False)


@dataclass
class Settings:
    """The budget and environment shared by every variant."""

    spec: Path
    trials: int
    epochs: int
    concurrency: int
    overhead_trials: int
    timeout_s: float
    root: Path
    cores: int
    experiment: str
    #: The spec's search objective (``best_val``) and the test metric of its champion rule.
    objective: Objective
    test_metric: str
    task: str  # the spec's family's: regression or classification
    #: ``--set`` overrides that swap the spec's family for the zero-work one of its task.
    zero_work: tuple[str, ...] = ()


@dataclass
class Row:
    """One line of the results table (None: not measured for this variant)."""

    variant: str
    ok: bool = True
    trials: int | None = None
    wall_s: float | None = None
    ratio_to_optuna: float | None = None
    epochs_trained: int | None = None
    metric: str | None = None  # the objective's validation metric (val_rmse, val_auc, ...)
    best_val: float | None = None  # its best value
    test_metric: str | None = None  # the champion rule's test metric (test_rmse, test_auc, ...)
    test_value: float | None = None  # the best model's value of it on the test split
    compute_s: float | None = None
    core_efficiency: float | None = None
    overhead_per_trial_s: float | None = None
    peak_rss_mb: float | None = None
    peak_pss_mb: float | None = None
    max_processes: int | None = None
    raylet_in_tree: bool | None = None
    exit_code: int | None = None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class VariantFailed(RuntimeError):
    """A variant's subprocess failed; the message carries the tail of its output."""


# ---------------------------------------------------------------- subprocess plumbing


def subprocess_env(settings: Settings) -> dict[str, str]:
    """Environment for variant subprocesses: a private Ray temp dir (so no running Ray
    cluster is joined), the repo on PYTHONPATH (Ray workers import ``benchmarks``), quiet TF."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    ray_tmp = settings.root / "ray"
    ray_tmp.mkdir(parents=True, exist_ok=True)
    env["RAY_TMPDIR"] = str(ray_tmp)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def sweep_command(spec: Path, overrides: list[str]) -> list[str]:
    """``sweep run SPEC --set ...`` using the console script next to this Python if present."""
    script = shutil.which("sweep", path=str(Path(sys.executable).parent)) or shutil.which("sweep")
    base = [script] if script else [sys.executable, "-m", "sweeps.cli"]
    return [*base, "run", str(spec), *(arg for o in overrides for arg in ("--set", o))]


def sweep_overrides(
    work: Path, trials: int, epochs: int, concurrency: int, scheduler: str
) -> list[str]:
    """The ``--set`` overrides of one sweep variant; MLflow and storage inside ``work``."""
    return [
        f"search.num_samples={trials}",
        f"search.max_concurrent={concurrency}",
        f"search.space.epochs={epochs}",
        f"search.scheduler={scheduler}",
        f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
        f"storage={work / 'results'}",
    ]


def run_in(
    settings: Settings, name: str, cmd: list[str], ok_codes: tuple[int, ...] = (0,)
) -> Measured:
    """Run ``cmd`` in a fresh working folder ``root/name``; raise VariantFailed on a bad exit."""
    work = settings.root / name
    work.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(settings)
    measured = run_measured(cmd, work, env, work / "output.log", settings.timeout_s)
    if measured.timed_out or measured.returncode not in ok_codes:
        why = "timed out" if measured.timed_out else f"exit code {measured.returncode}"
        raise VariantFailed(f"{name}: {why}\n{measured.log_tail()}")
    return measured


def fill_process_stats(row: Row, measured: Measured) -> Row:
    """Copy wall time, exit code and process-tree memory from ``measured`` into ``row``."""
    row.wall_s = measured.wall_s
    row.exit_code = measured.returncode
    row.peak_rss_mb = measured.tree.peak_rss_mb
    row.peak_pss_mb = measured.tree.peak_pss_mb
    row.max_processes = measured.tree.max_processes
    row.raylet_in_tree = "raylet" in measured.tree.names
    row.details["process_names"] = sorted(measured.tree.names)
    if measured.leftovers:
        row.notes = f"{measured.leftovers} process(es) outlived the run and were terminated"
    return row


def efficiency(compute_s: float | None, wall_s: float | None, cores: int) -> float | None:
    """Trial compute seconds over the machine's core-seconds during the wall time."""
    if compute_s is None or not wall_s:
        return None
    return compute_s / (wall_s * cores)


# ---------------------------------------------------------------- variants


def run_optuna(settings: Settings) -> list[Row]:
    """Variant (a): plain sequential Optuna in one subprocess."""
    out = settings.root / "optuna" / "result.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.plain_optuna",
        f"--spec={settings.spec}",
        f"--trials={settings.trials}",
        f"--epochs={settings.epochs}",
        f"--out={out}",
    ]
    measured = run_in(settings, "optuna", cmd)
    result = json.loads(out.read_text())
    row = fill_process_stats(Row("optuna", trials=result["trials"]), measured)
    row.epochs_trained = result["epochs_trained"]
    row.metric, row.best_val = result["metric"], result["best_val"]
    row.test_metric, row.test_value = result["test_metric"], result["test_value"]
    row.compute_s = result["compute_s"]
    row.core_efficiency = efficiency(row.compute_s, row.wall_s, settings.cores)
    row.details.update(
        best_config=result["best_config"],
        inner_wall_s=result["inner_wall_s"],
        test_metrics=result["test_metrics"],
    )
    return [row]


def run_sweep(settings: Settings, name: str = "sweep", scheduler: str = "null") -> list[Row]:
    """Variant (b) (or (c) with an ASHA ``scheduler``): the whole ``sweep run`` process."""
    work = settings.root / name
    overrides = sweep_overrides(
        work, settings.trials, settings.epochs, settings.concurrency, scheduler
    )
    measured = run_in(settings, name, sweep_command(settings.spec, overrides))
    store = read_sweep_store(
        f"sqlite:///{work / 'mlflow.db'}",
        settings.experiment,
        settings.objective.metric,
        settings.test_metric,
    )
    row = fill_process_stats(Row(name, trials=store["trials"]), measured)
    row.epochs_trained = store["epochs_trained"]
    row.metric, row.best_val = settings.objective.metric, store["best_val"]
    row.test_metric, row.test_value = settings.test_metric, store["test_value"]
    row.compute_s = store["compute_s"]
    row.core_efficiency = efficiency(row.compute_s, row.wall_s, settings.cores)
    row.details["trial_status"] = store["status"]
    return [row]


def run_asha(settings: Settings) -> list[Row]:
    """Variant (c): the sweep with ASHA early stopping."""
    grace = min(ASHA_GRACE_PERIOD, settings.epochs)
    scheduler = f"{{type: asha, max_t: {settings.epochs}, grace_period: {grace}}}"
    return run_sweep(settings, "asha", scheduler)


def run_overhead(settings: Settings) -> list[Row]:
    """Variant (d): zero-work trials at n and at 1 trial; exit code 1 is expected (the
    zero-work family saves no checkpoint, so there is nothing to register)."""
    walls: dict[int, Measured] = {}
    trials_done: dict[int, int] = {}
    for n in sorted({1, settings.overhead_trials}):
        name = f"overhead-{n}"
        work = settings.root / name
        overrides = [
            *sweep_overrides(work, n, 1, settings.concurrency, "null"),
            *settings.zero_work,
        ]
        walls[n] = run_in(settings, name, sweep_command(settings.spec, overrides), (0, 1))
        trials_done[n] = count_child_runs(f"sqlite:///{work / 'mlflow.db'}", settings.experiment)
    n = settings.overhead_trials
    row = fill_process_stats(Row("overhead", trials=trials_done[n]), walls[n])
    if n > 1:
        row.overhead_per_trial_s = (walls[n].wall_s - walls[1].wall_s) / (n - 1)
    row.details.update(wall_1_trial_s=walls[1].wall_s, trials_recorded=trials_done)
    return [row]


def zero_work_overrides(spec: SweepSpec, family: ModelFamily) -> tuple[str, ...]:
    """``--set`` overrides running ``spec`` with the zero-work family of ``family``'s task, on
    the same table: the family's default source and target when the spec names none."""
    overrides = [f"trainable={ZERO_WORK_MODULE}:{family.task}"]
    if not spec.data.source and family.default_source:
        overrides.append(f"data.source={family.default_source}")
    if not spec.data.target and family.schema is not None:
        overrides.append(f"data.target={family.schema.target}")
    return tuple(overrides)


def run_baselines(settings: Settings) -> list[Row]:
    """Non-neural baselines for the spec's task on the spec's split, in this process (wall:
    fit and search only)."""
    from benchmarks.baselines import run_baselines as fit_baselines
    from benchmarks.spec_data import family_and_splits
    from sweeps.config.spec import load_spec

    _, splits = family_and_splits(load_spec(settings.spec))
    rows = []
    for result in fit_baselines(splits):
        scores = result["scores"]
        rows.append(
            Row(
                result["variant"],
                wall_s=result["wall_s"],
                metric=settings.objective.metric,
                best_val=scores.get(settings.objective.metric),
                test_metric=settings.test_metric,
                test_value=scores.get(settings.test_metric),
                notes="in-process fit time; no start-up",
                details={"params": result["params"], "scores": scores},
            )
        )
    return rows


RUNNERS: dict[str, Callable[[Settings], list[Row]]] = {
    "optuna": run_optuna,
    "sweep": run_sweep,
    "asha": run_asha,
    "overhead": run_overhead,
    "baselines": run_baselines,
}


# ---------------------------------------------------------------- reading the MLflow store


def _parent_and_children(client: Any, experiment: str) -> tuple[Any, list[Any]]:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise VariantFailed(f"MLflow store has no experiment {experiment!r}")
    ids = [found.experiment_id]
    parents = client.search_runs(ids, filter_string="tags.`sweep.role` = 'sweep'")
    if len(parents) != 1:
        raise VariantFailed(f"expected one sweep parent run, found {len(parents)}")
    parent = parents[0]
    children = client.search_runs(
        ids,
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        max_results=10_000,
    )
    return parent, children


def read_sweep_store(
    tracking_uri: str, experiment: str, metric: str, test_metric: str
) -> dict[str, Any]:
    """Totals of a finished sweep from its MLflow store: child ``epochs_trained`` and
    ``trial_time_s`` sums, the parent's ``best_<metric>`` (as ``best_val``) and
    ``test_metric`` (as ``test_value``)."""
    from mlflow import MlflowClient

    parent, children = _parent_and_children(MlflowClient(tracking_uri=tracking_uri), experiment)
    metrics = parent.data.metrics
    status: dict[str, int] = {}
    for child in children:
        status[child.info.status] = status.get(child.info.status, 0) + 1
    return {
        "trials": len(children),
        "epochs_trained": int(sum(c.data.metrics.get("epochs_trained", 0) for c in children)),
        "compute_s": sum(c.data.metrics.get("trial_time_s", 0.0) for c in children),
        "best_val": metrics.get(f"best_{metric}"),
        "test_value": metrics.get(test_metric),
        "status": status,
    }


def count_child_runs(tracking_uri: str, experiment: str) -> int:
    """How many trial child runs a sweep recorded."""
    from mlflow import MlflowClient

    return len(_parent_and_children(MlflowClient(tracking_uri=tracking_uri), experiment)[1])


# ---------------------------------------------------------------- report


def add_ratios(rows: list[Row]) -> None:
    """Set ``ratio_to_optuna`` (wall / plain Optuna's wall) on the comparable rows."""
    base = next((r.wall_s for r in rows if r.variant == "optuna" and r.ok), None)
    for row in rows:
        if base and row.wall_s and row.variant in COMPARED:
            row.ratio_to_optuna = row.wall_s / base


def median_rows(rounds: list[list[Row]]) -> list[Row]:
    """One row per variant from repeated rounds: the successful run with the median wall time
    (the lower median for an even count; per-trial overhead for the ``overhead`` row), with
    every run's wall time in ``details["wall_runs_s"]``. A variant that never succeeded keeps
    its first failed row."""
    by_name: dict[str, list[Row]] = {}
    for rows in rounds:
        for row in rows:
            by_name.setdefault(row.variant, []).append(row)
    merged = []
    for runs in by_name.values():
        ok = [r for r in runs if r.ok]
        if not ok:
            merged.append(runs[0])
            continue
        key = "overhead_per_trial_s" if ok[0].overhead_per_trial_s is not None else "wall_s"
        ranked = sorted(ok, key=lambda r: getattr(r, key) or 0.0)
        chosen = ranked[(len(ranked) - 1) // 2]
        if len(runs) > 1:
            chosen.details["wall_runs_s"] = [r.wall_s for r in runs]
            chosen.details["failed_runs"] = len(runs) - len(ok)
        merged.append(chosen)
    return merged


def _wall_cell(row: Row) -> str:
    runs = [w for w in row.details.get("wall_runs_s", []) if w is not None]
    if len(runs) < 2:
        return _cell(row.wall_s, "{:.1f}")
    return f"{_cell(row.wall_s, '{:.1f}')} ({min(runs):.1f}-{max(runs):.1f})"


def _cell(value: Any, fmt: str = "{:.2f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt.format(value) if isinstance(value, float) else str(value)


def results_table(rows: list[Row], cores: int, objective: Objective, test_metric: str) -> Table:
    """The rich table of all rows; score columns are named after ``objective`` and
    ``test_metric``."""
    better = "lower" if objective.mode == "min" else "higher"
    table = Table(
        title=f"ray-sweeps vs plain Optuna (lower wall, {better} {objective.metric} and "
        f"{test_metric} are better)"
    )
    columns = [
        ("variant", "left"),
        ("trials", "right"),
        ("wall s (range)", "right"),
        ("x optuna", "right"),
        ("epochs", "right"),
        (f"best {objective.metric}", "right"),
        (test_metric, "right"),
        (f"core eff. ({cores})", "right"),
        ("overhead/trial s", "right"),
        ("peak RSS MB", "right"),
        ("peak PSS MB", "right"),
    ]
    for title, justify in columns:
        table.add_column(title, justify=justify)
    for r in rows:
        table.add_row(
            r.variant if r.ok else f"[red]{r.variant} (failed)[/]",
            _cell(r.trials),
            _wall_cell(r),
            _cell(r.ratio_to_optuna),
            _cell(r.epochs_trained),
            _cell(r.best_val, "{:.4f}"),
            _cell(r.test_value, "{:.4f}"),
            _cell(r.core_efficiency),
            _cell(r.overhead_per_trial_s),
            _cell(r.peak_rss_mb, "{:.0f}"),
            _cell(r.peak_pss_mb, "{:.0f}"),
        )
    return table


def print_machine(machine: dict[str, Any]) -> None:
    """One line about the machine, before anything runs."""
    console.print(
        f"[bold]machine[/]: {machine['cpu_model']}, {machine['cores']} cores, "
        f"{machine['ram_gb']} GB RAM, load {machine['load_avg_1m_at_start']} at start; "
        f"Python {machine['python']}"
    )


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_sweep",
        description="Benchmark the sweeper against plain sequential Optuna on this machine.",
    )
    parser.add_argument("--trials", type=int, default=12, help="trials per search (default 12)")
    parser.add_argument("--epochs", type=int, default=20, help="max epochs a trial trains")
    parser.add_argument("--concurrency", type=int, default=2, help="sweep trials at once")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma list from {','.join(VARIANTS)} (default: all)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--overhead-trials", type=int, default=24, help="zero-work trials")
    parser.add_argument(
        "--spec",
        default=str(DEFAULT_SPEC),
        help="sweep spec: a YAML file or a shipped family's name, e.g. breast_cancer "
        "(default: the abalone spec)",
    )
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per subprocess")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of all variants, interleaved; rows show the median run (default 1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}")
    if min(args.trials, args.epochs, args.concurrency, args.overhead_trials, args.repeat) < 1:
        parser.error(
            "--trials, --epochs, --concurrency, --overhead-trials and --repeat must be >= 1"
        )
    from benchmarks.spec_data import spec_path

    args.spec = spec_path(args.spec)
    if not args.spec.is_file():
        parser.error(f"--spec: no spec file {args.spec} (nor a shipped spec of that name)")
    return args


def run_variant(name: str, settings: Settings) -> list[Row]:
    """Run one variant; a failure becomes a failed row instead of stopping the benchmark."""
    console.print(f"[bold]{name}[/]: running...")
    started = time.perf_counter()
    try:
        rows = RUNNERS[name](settings)
    except (VariantFailed, UserError, OSError, ValueError, KeyError, TypeError) as exc:
        console.print(f"[red]{name} failed[/]: {exc}")
        return [Row(name, ok=False, notes=str(exc).splitlines()[0])]
    console.print(f"[bold]{name}[/]: done in {time.perf_counter() - started:.1f}s")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the chosen variants one after another; print the table, write the JSON.

    Returns 0 if every variant succeeded, else 1 (the JSON is written either way).
    """
    args = parse_args(argv)
    from sweeps.config.spec import load_spec
    from sweeps.running.preflight import load_family

    try:
        spec = load_spec(args.spec)
        family = load_family(spec.trainable, spec.folder)
    except UserError as exc:
        console.print(f"[red]--spec {args.spec}[/]: {exc}")
        return 2
    machine = machine_info()
    print_machine(machine)
    console.print(
        f"[bold]spec[/]: {args.spec} ({family.task}; objective {spec.objective.metric} "
        f"{spec.objective.mode}, test metric {spec.champion_objective.metric})"
    )
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    settings = Settings(
        spec=args.spec,
        trials=args.trials,
        epochs=args.epochs,
        concurrency=args.concurrency,
        overhead_trials=args.overhead_trials,
        timeout_s=args.timeout,
        root=root,
        cores=machine["cores"],
        experiment=spec.experiment_name,
        objective=spec.objective,
        test_metric=spec.champion_objective.metric,
        task=family.task,
        zero_work=zero_work_overrides(spec, family),
    )
    try:
        rounds = []
        for i in range(args.repeat):
            if args.repeat > 1:
                console.print(f"[bold]round {i + 1} of {args.repeat}[/]")
            # A short folder name: Ray's socket paths under it have a length limit.
            this_round = dataclasses.replace(settings, root=root / f"r{i + 1}")
            rounds.append([row for name in args.variants for row in run_variant(name, this_round)])
        rows = median_rows(rounds)
    finally:
        if args.keep:
            console.print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    add_ratios(rows)
    out = Console(highlight=False)
    out.width = out.width if out.is_terminal else TABLE_WIDTH
    out.print(results_table(rows, settings.cores, settings.objective, settings.test_metric))
    write_json(args.json, machine, args, rows, settings)
    console.print(f"results written to {args.json}")
    return 0 if all(r.ok for r in rows) else 1


def write_json(
    path: Path,
    machine: dict[str, Any],
    args: argparse.Namespace,
    rows: list[Row],
    settings: Settings,
) -> None:
    """Machine, settings and rows as JSON (non-finite numbers as null)."""
    payload = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "settings": {
            "trials": args.trials,
            "epochs": args.epochs,
            "concurrency": args.concurrency,
            "overhead_trials": args.overhead_trials,
            "variants": args.variants,
            "repeat": args.repeat,
            "spec": str(args.spec),
            "experiment": settings.experiment,
            "task": settings.task,
            "metric": settings.objective.metric,
            "mode": settings.objective.mode,
            "test_metric": settings.test_metric,
        },
        "results": [_finite(asdict(r)) for r in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
