"""Does ``register.ensemble`` pay? Test scores of the single best model against ensembles of
the best 3 and 5 trials, from one sweep per seed.

For each search seed, ``sweep run SPEC --set search.seed=S --set register.ensemble=5`` runs as a
user runs it (a subprocess, its own MLflow store and storage under ``--root``), so the sweep
itself registers the ensemble of 5. Then the five members' checkpoints (listed on the registered
version, best first) are loaded here with the family and scored on the same held-out test split
with the family's own ``evaluate``: the best alone (K=1), the ``average`` of the best 3 and of
all 5; no trial is trained again. The K=1 and K=5 scores are checked against what the sweep
logged on its parent run (``test_rmse``, ``ensemble_test_rmse`` for abalone).

    python -m benchmarks.ensemble                          # abalone default sweep, seeds 0 1 2
    python -m benchmarks.ensemble --seeds 0 --set search.num_samples=8

Writes JSON (``--json``, default ``benchmarks/results/ensemble.json``) with the machine, every
seed's scores and the median per K, and a markdown table beside it (``.md``).
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
from benchmarks.spec_data import DEFAULT_SPEC, REPO, family_and_splits, spec_path

DEFAULT_JSON = REPO / "benchmarks" / "results" / "ensemble.json"
SIZES = (1, 3, 5)  # 1: the single best model
TIMEOUT_S = 3600.0


def run_one_sweep(
    spec: Path, experiment: str, seed: int, work: Path, overrides: list[str]
) -> dict[str, Any]:
    """``sweep run`` with ``search.seed=seed`` and ``register.ensemble`` = the largest K, in
    ``work``; its wall time and what it registered (from its MLflow store)."""
    from mlflow import MlflowClient

    work.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{work / 'mlflow.db'}"
    sets = [
        f"search.seed={seed}",
        f"register.ensemble={max(SIZES)}",
        f"tracking.uri={store}",
        f"storage={work / 'results'}",
        *overrides,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env.update(RAY_TMPDIR=str(work / "ray"), RAY_USAGE_STATS_ENABLED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    (work / "ray").mkdir(exist_ok=True)
    measured = run_measured(sweep_command(spec, sets), work, env, work / "output.log", TIMEOUT_S)
    if measured.returncode != 0 or measured.timed_out:
        raise RuntimeError(f"seed {seed}: sweep failed\n{measured.log_tail()}")
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    [run] = client.search_runs([found.experiment_id], "tags.`sweep.role` = 'sweep'")
    [version] = client.search_model_versions(f"tags.sweep_run_id = '{run.info.run_id}'")
    return {
        "seed": seed,
        "wall_s": round(measured.wall_s, 1),
        "parent_run_id": run.info.run_id,
        "metrics": dict(run.data.metrics),
        "members": [m.split(":", 1)[0] for m in version.tags["ensemble_members"].split(",")],
        "checkpoints": version.tags["ensemble_checkpoint_uris"].split(","),
        "note": run.data.tags.get("sweep.ensemble_note"),
    }


def score_sizes(spec: Any, checkpoints: list[str]) -> dict[int, dict[str, float]]:
    """Test metrics of the best checkpoint alone and of the average of the best K, per K."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    family, splits = family_and_splits(spec)
    models = [family.load(folder) for folder in checkpoints]
    scores = {}
    for k in SIZES:
        if k > len(models):
            continue
        model = models[0] if k == 1 else family.average(models[:k])
        scores[k] = family.evaluate(model, splits.test, splits.schema)
    return scores


def markdown(rows: list[dict[str, Any]], medians: dict[int, float], metric: str) -> str:
    """One row per seed and the median row: the test metric for each K."""
    head = " | ".join(["single best" if k == 1 else f"ensemble K={k}" for k in SIZES])
    lines = [f"| seed | {head} | best 5 trials | sweep wall |", "|---" * (len(SIZES) + 3) + "|"]
    for row in rows:
        cells = " | ".join(_num(row["test"].get(str(k))) for k in SIZES)
        members = ", ".join(row["members"])
        lines.append(f"| {row['seed']} | {cells} | {members} | {row['wall_s']:.0f} s |")
    cells = " | ".join(f"**{medians[k]:.4f}**" for k in SIZES)
    lines.append(f"| median | {cells} | | |")
    return f"{metric} on the held-out test split:\n\n" + "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), help="spec file or shipped name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: temp)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one sweep per seed, score K = 1, 3, 5 from its checkpoints, write JSON + markdown."""
    from sweeps.config.spec import load_spec

    args = parse_args(argv)
    spec_file = spec_path(args.spec)
    spec = load_spec(spec_file, args.overrides)
    metric = spec.champion_objective.metric
    machine = machine_info()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-ensemble-"))
    rows = []
    for seed in args.seeds:
        print(f"seed {seed}: sweep run {spec_file.name} ...", file=sys.stderr, flush=True)
        work = root / f"seed-{seed}"
        swept = run_one_sweep(spec_file, spec.experiment_name, seed, work, args.overrides)
        scores = score_sizes(spec, swept["checkpoints"])
        swept["test"] = {str(k): s[metric] for k, s in scores.items()}
        logged = swept["metrics"]
        swept["logged_by_sweep"] = {"1": logged.get(metric), "5": logged.get(f"ensemble_{metric}")}
        swept["test_metrics"] = {str(k): s for k, s in scores.items()}
        rows.append(swept)
        print(f"seed {seed}: {swept['test']} in {swept['wall_s']} s", file=sys.stderr, flush=True)
    medians = {
        k: statistics.median(r["test"][str(k)] for r in rows if str(k) in r["test"]) for k in SIZES
    }
    payload = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "settings": {
            "spec": str(spec_file),
            "overrides": args.overrides,
            "seeds": args.seeds,
            "sizes": list(SIZES),
            "metric": metric,
        },
        "results": rows,
        "median": {str(k): v for k, v in medians.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(rows, medians, metric)
    args.json.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
