"""Does ``search.warm_start`` pay? A sweep of N trials that learns from an earlier sweep
against a cold sweep of 2N, at the default budget, over several search seeds.

For each seed S, three ``sweep run`` subprocesses, as a user runs them:

1. the earlier sweep: the spec with ``search.seed=S+100`` (its own trajectory), 2N trials;
2. the cold sweep: ``search.seed=S``, 2N trials, in a store of its own;
3. the warm sweep: ``search.seed=S``, N trials, ``search.warm_start=<the earlier sweep>``, in
   the earlier sweep's store.

Reported per seed and as medians: best val metric, test metric of the registered model, wall.

    python -m benchmarks.warm_start                        # abalone default spec: N = 16
    python -m benchmarks.warm_start --seeds 0 --set search.space.epochs=5

Writes JSON (``--json``, default ``benchmarks/results/warm_start.json``) with the machine and
every sweep, and a markdown table beside it (``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_sweep import sweep_command
from benchmarks.measure import machine_info, run_measured
from benchmarks.spec_data import DEFAULT_SPEC, REPO, spec_path

DEFAULT_JSON = REPO / "benchmarks" / "results" / "warm_start.json"
TIMEOUT_S = 3600.0
EARLIER_SEED_OFFSET = 100


def run_sweep(spec: Path, experiment: str, work: Path, sets: list[str]) -> dict[str, Any]:
    """``sweep run SPEC --set ...`` with MLflow and storage in ``work``; what its newest parent
    run recorded (best value, test metrics, run name) and its wall time."""
    from mlflow import MlflowClient

    work.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{work / 'mlflow.db'}"
    sets = [*sets, f"tracking.uri={store}", f"storage={work / 'results'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env.update(RAY_TMPDIR=str(work / "ray"), RAY_USAGE_STATS_ENABLED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    (work / "ray").mkdir(exist_ok=True)
    log = work / f"output-{len(list(work.glob('output-*.log')))}.log"
    measured = run_measured(sweep_command(spec, sets), work, env, log, TIMEOUT_S)
    if measured.returncode != 0 or measured.timed_out:
        raise RuntimeError(f"sweep failed: {sets}\n{measured.log_tail()}")
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    run = client.search_runs(
        [found.experiment_id], "tags.`sweep.role` = 'sweep'", order_by=["start_time DESC"]
    )[0]
    return {
        "run_name": run.info.run_name,
        "wall_s": round(measured.wall_s, 1),
        "metrics": dict(run.data.metrics),
        "warm_start_note": run.data.tags.get("sweep.warm_start_note"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), help="spec file or shipped name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=16, help="N: the warm sweep's trials")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: temp)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Earlier, cold and warm sweeps per seed; JSON and a markdown table."""
    from sweeps.config.spec import load_spec

    args = parse_args(argv)
    spec_file = spec_path(args.spec)
    spec = load_spec(spec_file, args.overrides)
    best, test = f"best_{spec.objective.metric}", spec.champion_objective.metric
    n = args.trials
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-warm-"))
    rows = []
    for seed in args.seeds:
        shared, cold_work = root / f"seed-{seed}" / "shared", root / f"seed-{seed}" / "cold"
        print(f"seed {seed}: earlier, cold and warm sweeps ...", file=sys.stderr, flush=True)
        base = [*args.overrides, f"search.num_samples={2 * n}"]
        earlier = run_sweep(
            spec_file,
            spec.experiment_name,
            shared,
            [*base, f"search.seed={seed + EARLIER_SEED_OFFSET}"],
        )
        cold = run_sweep(spec_file, spec.experiment_name, cold_work, [*base, f"search.seed={seed}"])
        warm = run_sweep(
            spec_file,
            spec.experiment_name,
            shared,
            [
                *args.overrides,
                f"search.num_samples={n}",
                f"search.seed={seed}",
                f"search.warm_start={earlier['run_name']}",
            ],
        )
        row = {"seed": seed, "earlier": earlier, "cold": cold, "warm": warm}
        rows.append(row)
        print(
            f"seed {seed}: cold {cold['metrics'].get(best)} warm {warm['metrics'].get(best)}",
            file=sys.stderr,
            flush=True,
        )
    median = {
        f"{kind}_{key}": statistics.median(r[kind]["metrics"][key] for r in rows)
        for kind in ("cold", "warm")
        for key in (best, test)
    } | {
        f"{kind}_wall_s": statistics.median(r[kind]["wall_s"] for r in rows)
        for kind in ("cold", "warm")
    }
    payload = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": {
            "spec": str(spec_file),
            "overrides": args.overrides,
            "seeds": args.seeds,
            "warm_trials": n,
            "cold_trials": 2 * n,
        },  # fmt: skip
        "results": rows,
        "median": median,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(rows, median, best, test, n)
    args.json.with_suffix(".md").write_text(table)
    print(table)
    return 0


def markdown(rows: list[dict], median: dict[str, float], best: str, test: str, n: int) -> str:
    """One row per seed and the medians: cold (2N trials) against warm (N trials)."""
    lines = [
        f"| seed | cold {2 * n}: {best} | {test} | wall | warm {n}: {best} | {test} | wall |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = []
        for kind in ("cold", "warm"):
            m = r[kind]["metrics"]
            cells += [f"{m.get(best, float('nan')):.4f}", f"{m.get(test, float('nan')):.4f}",
                      f"{r[kind]['wall_s']:.0f} s"]  # fmt: skip
        lines.append(f"| {r['seed']} | " + " | ".join(cells) + " |")
    lines.append(
        f"| median | **{median[f'cold_{best}']:.4f}** | {median[f'cold_{test}']:.4f} | "
        f"{median['cold_wall_s']:.0f} s | **{median[f'warm_{best}']:.4f}** | "
        f"{median[f'warm_{test}']:.4f} | {median['warm_wall_s']:.0f} s |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
