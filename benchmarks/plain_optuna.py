"""Variant (a): the sweep's search done with plain sequential Optuna in one process.

Same spec search space, seed, trial count and initial points as the sweeper, for any spec whose
family is a :class:`~trainable.keras_family.KerasFamily` (regression or classification): the
model comes from the family's own ``build``, the inputs from
:func:`trainable.pipeline.fit_inputs`, one ``model.fit`` per trial with early stopping on the
spec's objective (``search.metric`` / ``search.mode``). The best trial's model is kept in memory
and scored on the test split by the family's ``evaluate``, on the metric the sweep's champion
rule uses (``test_rmse``, ``test_auc``, ...). Run by ``benchmarks.bench_sweep`` as a subprocess,
so its wall time includes start-up:

  python -m benchmarks.plain_optuna --spec breast_cancer --trials 12 --epochs 20 --out o.json

Output keys: ``metric``/``mode`` (the objective), ``best_val`` (its best value over all trials),
``test_metric``/``test_value`` (the best model on the test split), ``test_metrics`` (all of
them), ``trials``, ``epochs_trained``, ``compute_s``, ``best_config``, ``inner_wall_s``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.config.spec import SweepSpec, load_spec
from sweeps.environment import set_defaults
from trainable.contract import Objective
from trainable.keras_family import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_PATIENCE,
    KerasFamily,
)

if TYPE_CHECKING:
    from trainable.tables import Splits


def sample_config(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    """A full trial config: suggested values for searched parameters, constants as they are."""
    return {name: param.suggest(trial, name) for name, param in spec.search.space.items()}


@dataclass
class Tally:
    """What the objective accumulates across trials."""

    objective: Objective
    epochs: int = 0
    compute_s: float = 0.0
    best_val: float | None = None
    best_model: Any = None
    best_config: dict[str, Any] | None = None


def run(spec: SweepSpec) -> dict[str, Any]:
    """Run the study described by ``spec``; return its totals and the best model's test score."""
    import keras
    import optuna

    from benchmarks.spec_data import family_and_splits

    started = time.perf_counter()
    family, splits = family_and_splits(spec)
    if not isinstance(family, KerasFamily):
        raise TypeError(
            f"{spec.trainable} is a {type(family).__name__}; plain Optuna needs a KerasFamily "
            "(a family with build())"
        )
    objective = spec.objective
    tally = Tally(objective)

    def optimize(trial: optuna.Trial) -> float:
        config = sample_config(trial, spec)
        t0 = time.perf_counter()
        model, history = _fit(family, config, splits, objective)
        tally.compute_s += time.perf_counter() - t0
        curve = history.get(objective.metric, [])
        tally.epochs += len(curve)
        best = objective.best(v for v in curve if math.isfinite(v))
        if objective.better(best, tally.best_val):
            tally.best_val, tally.best_model, tally.best_config = best, model, config
        return objective.worst if best is None else best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=spec.search.seed),
        direction=objective.direction,
    )
    for point in spec.search.initial_points:
        study.enqueue_trial(dict(point))
    study.optimize(optimize, n_trials=spec.search.num_samples)

    test_metric = spec.champion_objective.metric
    test_metrics: dict[str, float] = {}
    if tally.best_model is not None:
        test_metrics = family.evaluate(tally.best_model, splits.test, splits.schema)
    keras.backend.clear_session()
    return {
        "metric": objective.metric,
        "mode": objective.mode,
        "test_metric": test_metric,
        "trials": len(study.trials),
        "epochs_trained": tally.epochs,
        "compute_s": tally.compute_s,
        "best_val": tally.best_val,
        "test_value": test_metrics.get(test_metric),
        "test_metrics": test_metrics,
        "best_config": tally.best_config,
        "inner_wall_s": time.perf_counter() - started,
    }


def _fit(
    family: KerasFamily, config: dict[str, Any], splits: Splits, objective: Objective
) -> tuple[Any, dict[str, list[float]]]:
    """Build and fit one model as the family's ``train`` does; weights end at the best epoch."""
    import keras

    from trainable.pipeline import fit_inputs

    seed = int(config.get("seed", 0))
    keras.utils.set_random_seed(seed)
    model = family.build(config, splits.schema, splits.train)
    batch_size = int(config.get("batch_size", DEFAULT_BATCH_SIZE))
    train, validation = fit_inputs(splits, batch_size, seed, family.xy)
    stop = keras.callbacks.EarlyStopping(
        monitor=objective.metric,
        patience=int(config.get("patience", DEFAULT_PATIENCE)),
        mode=objective.mode,
        restore_best_weights=True,  # the sweep registers its best checkpoint, not the last epoch
    )
    history = model.fit(
        train,
        validation_data=validation,
        epochs=int(config.get("epochs", DEFAULT_EPOCHS)),
        shuffle=False,  # the pipeline shuffles
        verbose=0,
        callbacks=[stop],
    )
    return model, history.history


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the study and write its result as JSON to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="spec file or shipped family name")
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    set_defaults()
    spec = load_spec(
        args.spec,
        [f"search.num_samples={args.trials}", f"search.space.epochs={args.epochs}"],
    )
    args.out.write_text(json.dumps(run(spec), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
