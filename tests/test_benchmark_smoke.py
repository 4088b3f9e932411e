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


def test_benchmark_runs_at_tiny_budget(tmp_path: Path) -> None:
    """Plain Optuna, the sweep and the baselines each produce a row with a wall time and a
    finite test RMSE."""
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_sweep", *TINY]
    cmd += ["--variants", "optuna,sweep,baselines", "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    rows = {row["variant"]: row for row in report["results"]}
    assert set(EXPECTED_ROWS) <= set(rows), sorted(rows)
    for name in EXPECTED_ROWS:
        row = rows[name]
        assert row["ok"], row
        assert row["wall_s"] > 0, row
        assert row["test_rmse"] is not None and math.isfinite(row["test_rmse"]), row
    assert rows["sweep"]["trials"] == 2
    assert rows["optuna"]["epochs_trained"] >= 2
