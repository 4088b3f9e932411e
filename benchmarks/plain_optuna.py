"""Variant (a): the sweep's search done with plain sequential Optuna in one process.

Same spec search space, seed, trial count and initial points as the sweeper; the model comes
from the project's own :func:`trainable.model.build_model`; one ``model.fit`` per trial with
early stopping on ``val_rmse``. The best trial's model is kept in memory and evaluated on the
test split. Run by ``benchmarks.bench_sweep`` as a subprocess, so its wall time includes start-up:

  python -m benchmarks.plain_optuna --spec sweeps/abalone.yaml --trials 12 --epochs 20 --out o.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.spec import Choice, Constant, LogUniform, Param, RandInt, SweepSpec, Uniform, load_spec

if TYPE_CHECKING:
    from trainable.data import Splits

DEFAULT_PATIENCE = 10


def suggest(trial: Any, name: str, param: Param) -> Any:
    """One spec parameter as an Optuna ``suggest_*`` call (``randint`` bounds are inclusive)."""
    if isinstance(param, Constant):
        return param.value
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, param.values)
    if isinstance(param, RandInt):
        return trial.suggest_int(name, param.low, param.high)
    if isinstance(param, LogUniform):
        return trial.suggest_float(name, param.low, param.high, log=True)
    if isinstance(param, Uniform):
        return trial.suggest_float(name, param.low, param.high)
    raise TypeError(f"unsupported parameter {param!r}")


def sample_config(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    """A full trial config: suggested values for searched parameters, constants as they are."""
    return {name: suggest(trial, name, param) for name, param in spec.search.space.items()}


@dataclass
class Tally:
    """What the objective accumulates across trials."""

    epochs: int = 0
    compute_s: float = 0.0
    best_val_rmse: float = math.inf
    best_model: Any = None
    best_config: dict[str, Any] | None = None


def run(spec: SweepSpec) -> dict[str, Any]:
    """Run the study described by ``spec``; return its totals and the best model's test RMSE."""
    import keras
    import optuna

    from sweeps.registry import rmse_mae
    from trainable.data import load_dataset, split_dataset

    started = time.perf_counter()
    split = spec.data.split
    splits = split_dataset(
        load_dataset(spec.data.source, spec.data.target), split.val, split.test, split.seed
    )
    tally = Tally()

    def objective(trial: optuna.Trial) -> float:
        config = sample_config(trial, spec)
        t0 = time.perf_counter()
        model, history = _fit(config, splits)
        tally.compute_s += time.perf_counter() - t0
        values = [v for v in history["val_rmse"] if math.isfinite(v)]
        tally.epochs += len(history["val_rmse"])
        best = min(values, default=math.inf)
        if best < tally.best_val_rmse:
            tally.best_val_rmse, tally.best_model, tally.best_config = best, model, config
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=spec.search.seed),
        direction="minimize" if spec.search.mode == "min" else "maximize",
    )
    for point in spec.search.initial_points:
        study.enqueue_trial(dict(point))
    study.optimize(objective, n_trials=spec.search.num_samples)

    x_test, y_test = splits.xy("test")
    test_rmse, _ = rmse_mae(tally.best_model.predict(x_test, verbose=0), y_test)
    keras.backend.clear_session()
    return {
        "trials": len(study.trials),
        "epochs_trained": tally.epochs,
        "compute_s": tally.compute_s,
        "best_val_rmse": tally.best_val_rmse,
        "test_rmse": test_rmse,
        "best_config": tally.best_config,
        "inner_wall_s": time.perf_counter() - started,
    }


def _fit(config: dict[str, Any], splits: Splits) -> tuple[Any, dict[str, list[float]]]:
    """Build and fit one model as the trainable does; weights end at the best epoch."""
    import keras

    from trainable.model import build_model_for
    from trainable.pipeline import fit_inputs

    seed = int(config.get("seed", 0))
    keras.utils.set_random_seed(seed)
    model = build_model_for(config, splits.train, splits.target)
    train, validation = fit_inputs(splits, int(config.get("batch_size", 32)), seed)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_rmse",
        patience=int(config.get("patience", DEFAULT_PATIENCE)),
        mode="min",
        restore_best_weights=True,  # the sweep registers its best checkpoint, not the last epoch
    )
    history = model.fit(
        train,
        validation_data=validation,
        epochs=int(config.get("epochs", 50)),
        shuffle=False,  # the pipeline shuffles
        verbose=0,
        callbacks=[stop],
    )
    return model, history.history


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the study and write its result as JSON to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = load_spec(
        args.spec,
        [f"search.num_samples={args.trials}", f"search.space.epochs={args.epochs}"],
    )
    args.out.write_text(json.dumps(run(spec), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
