"""Smoke test of the benchmark: it runs end to end at a tiny budget and writes its JSON.

No timing assertions: this machine's speed and load are not the test's business.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--trials", "2", "--epochs", "2", "--concurrency", "2", "--overhead-trials", "2"]
EXPECTED_ROWS = ("optuna", "sweep", "ridge", "gbm")


def run_benchmark(tmp_path: Path, *args: str) -> dict:
    """Run ``python -m benchmarks.bench_sweep`` with ``args``; its JSON report."""
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_sweep", *args, "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def assert_scored(row: dict, metric: str, test_metric: str) -> None:
    """A successful row with a wall time and a finite test score named as expected."""
    assert row["ok"], row
    assert row["wall_s"] > 0, row
    assert (row["metric"], row["test_metric"]) == (metric, test_metric), row
    assert row["test_value"] is not None and math.isfinite(row["test_value"]), row


def test_benchmark_runs_at_tiny_budget(tmp_path: Path) -> None:
    """Plain Optuna, the sweep and the baselines each produce a row with a wall time and a
    finite test RMSE (the default abalone spec's objective)."""
    report = run_benchmark(tmp_path, *TINY, "--variants", "optuna,sweep,baselines")
    assert report["machine"]["cores"] >= 1
    assert report["settings"]["metric"] == "val_rmse"
    assert report["settings"]["test_metric"] == "test_rmse"
    rows = {row["variant"]: row for row in report["results"]}
    assert set(EXPECTED_ROWS) <= set(rows), sorted(rows)
    for name in EXPECTED_ROWS:
        assert_scored(rows[name], "val_rmse", "test_rmse")
    for name in ("optuna", "sweep"):
        assert rows[name]["best_val"] is not None and math.isfinite(rows[name]["best_val"])
    assert rows["sweep"]["trials"] == 2
    assert rows["optuna"]["epochs_trained"] >= 2


def test_classification_baselines_score_by_auc(tmp_path: Path) -> None:
    """``--spec breast_cancer``: logistic regression and gradient boosting are scored by the
    spec's objective (validation and test ROC AUC), accuracy alongside."""
    report = run_benchmark(tmp_path, "--spec", "breast_cancer", "--variants", "baselines")
    assert report["settings"]["task"] == "classification"
    assert (report["settings"]["metric"], report["settings"]["mode"]) == ("val_auc", "max")
    rows = {row["variant"]: row for row in report["results"]}
    assert set(rows) == {"logistic", "gbm"}, sorted(rows)
    for row in rows.values():
        assert_scored(row, "val_auc", "test_auc")
        assert 0.5 < row["test_value"] <= 1.0, row
        assert 0.5 < row["best_val"] <= 1.0, row
        assert 0.0 <= row["details"]["scores"]["test_accuracy"] <= 1.0, row
