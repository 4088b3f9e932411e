"""Arrange code the tests share: spec paths, small-sweep overrides, the CLI as a subprocess,
and reading back what a sweep left (test split, checkpoint state)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeps.config.spec import SweepSpec

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
DEFAULT_SPEC = REPO / "trainable" / "families" / "abalone.yaml"
CLASSIFICATION_SPEC = REPO / "trainable" / "families" / "breast_cancer.yaml"

#: The default small sweep (:func:`small_spec_overrides`): 4 trials x 3 epochs, 2 at a time.
DEFAULT_SWEEP_TRIALS = 4
DEFAULT_SWEEP_EPOCHS = 3
#: conftest's ``mae_conditional_sweep``: trials, and epochs before early stopping.
MAE_SWEEP_TRIALS = 6
MAE_SWEEP_EPOCHS = 8


def small_spec_overrides(tmp: Path, **extra: object) -> list[str]:
    """Overrides for a tiny sweep writing into ``tmp``."""
    overrides = {
        "search.num_samples": DEFAULT_SWEEP_TRIALS,
        "search.max_concurrent": 2,
        "search.space.epochs": DEFAULT_SWEEP_EPOCHS,
        "search.scheduler": "null",
        "tracking.uri": f"sqlite:///{tmp / 'mlflow.db'}",
        "storage": str(tmp / "results"),
        **extra,
    }
    return [f"{k}={v}" for k, v in overrides.items()]


def exploratory_spec(tmp: Path, trials: int, seed: int, *more: str) -> SweepSpec:
    """The default spec as a tiny exploratory sweep into ``tmp``: 2 epochs per trial, no
    initial points, nothing registered (``register.enabled: false``); ``more`` overrides."""
    from sweeps.config.spec import load_spec

    overrides = small_spec_overrides(
        tmp,
        **{
            "search.num_samples": trials,
            "search.seed": seed,
            "search.space.epochs": 2,
            "search.initial_points": "[]",
            "register.enabled": "false",
        },
    )
    return load_spec(DEFAULT_SPEC, [*overrides, *more])


def pythonpath_with_tests() -> str:
    """``PYTHONPATH`` for a process that imports the test modules (sample trainables, families)."""
    return os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])


def sweep_command(action: str, *args: str, **overrides: object) -> list[str]:
    """``python -m sweeps.cli ACTION ARGS --set key=value ...`` (dots in keys as ``__``)."""
    command = [sys.executable, "-m", "sweeps.cli", action, *args]
    for key, value in overrides.items():
        command += ["--set", f"{key.replace('__', '.')}={value}"]
    return command


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a `sweep` subprocess: nothing leaks in from the test session's MLflow
    or Ray, and its own local Ray can start next to the session's (Ray 2.60 token auth)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env["RAY_AUTH_MODE"] = "disabled"
    env.update(extra)
    return env


def abalone_test_split(spec):
    """The abalone spec's held-out test rows (features and target), as the sweep split them."""
    from trainable.families.abalone import SCHEMA
    from trainable.tables import load_dataset, split_dataset

    split = spec.data.split
    dataset = load_dataset("builtin:abalone", SCHEMA)
    return split_dataset(dataset, split.val, split.test, split.seed).test


def holdout_rmse(model, spec) -> float:
    """RMSE of a loaded pyfunc model on the spec's test split, from raw rows."""
    import numpy as np

    from trainable.families.abalone import SCHEMA

    test = abalone_test_split(spec)
    predictions = np.asarray(model.predict(test[SCHEMA.feature_names]))
    assert predictions.shape == (len(test),)  # 1-D, one prediction per row
    return float(np.sqrt(np.mean((predictions - test["rings"].to_numpy()) ** 2)))


def only_checkpoint_state(storage_path: str, run_name: str) -> dict:
    """The saved trial state of the one checkpoint Tune kept for trial ``run_name``."""
    import json

    folders = sorted(Path(storage_path, run_name).glob("checkpoint_*"))
    assert len(folders) == 1, run_name
    return json.loads((folders[0] / "trial_state.json").read_text())
