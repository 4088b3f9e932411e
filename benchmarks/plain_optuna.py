"""Variant (a): the sweep's search done with plain Optuna, as a user would write it.

Same spec search space (conditional parameters included, through the sweeper's own
:class:`~sweeps.search.define_by_run.SpaceFunction`), seed, trial count and initial points as the
sweeper, for any spec whose family is a :class:`~trainable.keras_family.KerasFamily` (regression
or classification): the model comes from the family's own ``build``, the inputs from
:func:`trainable.pipeline.fit_inputs`, one ``model.fit`` per trial with early stopping on the
spec's objective (``search.metric`` / ``search.mode``). The best trial's model is kept in memory
(at its best epoch's weights) and scored on the test split by the family's ``evaluate``, on the
metric the sweep's champion rule uses (``test_rmse``, ``test_auc``, ...). Run by the benchmarks
as a subprocess, so its wall time includes start-up:

  python -m benchmarks.plain_optuna --spec breast_cancer --trials 12 --epochs 20 --out o.json

Options for a like-for-like peer of the default sweep (``benchmarks.time_to_quality``):

- ``--pruner sh``: Optuna's ``SuccessiveHalvingPruner`` with the spec's ASHA ``grace_period``
  (``min_resource``) and ``reduction_factor``, fed by ``trial.report(value, epoch)`` each epoch.
- ``--storage journal:FILE``: the study lives in a ``JournalStorage`` file shared by several
  processes; they stop together at ``--trials`` trials in all (the study is created and its
  initial points enqueued once beforehand, by :func:`prepare_study`).
- ``--sampler-seed``: the TPE seed (default ``search.seed``); ``--set`` any spec override.
- ``--replay FILE``: no search; train each ``{"config": ..., "epochs": N}`` of FILE (a JSON list)
  for exactly N epochs, one after another, and report each fit's time.

Without ``--trials``/``--epochs`` the spec's own ``search.num_samples`` and epochs are used.

Output keys: ``metric``/``mode`` (the objective), ``best_val`` (its best value over all trials,
pruned ones included), ``test_metric``/``test_value`` (the best model on the test split),
``test_metrics`` (all of them), ``trials``, ``epochs_trained``, ``compute_s``, ``best_config``,
``inner_wall_s``, ``per_trial`` (number, state, epochs, best value, fit seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    import optuna

    from trainable.tables import Splits

PRUNERS = ("none", "sh")
JOURNAL_PREFIX = "journal:"
STUDY_NAME = "plain-optuna"


def sample_config(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    """A full trial config: suggested values for searched parameters, constants as they are
    (unconditional spaces only; :class:`~sweeps.search.define_by_run.SpaceFunction` handles
    conditions)."""
    return {name: param.suggest(trial, name) for name, param in spec.search.space.items()}


@dataclass
class Options:
    """How the study runs: pruning, shared storage, sampler seed."""

    pruner: str = "none"  # one of PRUNERS
    storage: str | None = None  # "journal:FILE": a study shared with other processes
    sampler_seed: int | None = None  # None: the spec's search.seed
    study_name: str = STUDY_NAME


@dataclass
class Tally:
    """What the objective accumulates across trials."""

    objective: Objective
    epochs: int = 0
    compute_s: float = 0.0
    best_val: float | None = None
    best_model: Any = None
    best_config: dict[str, Any] | None = None
    per_trial: list[dict[str, Any]] = field(default_factory=list)


def journal_storage(storage: str) -> Any:
    """The Optuna ``JournalStorage`` of ``journal:FILE``."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not storage.startswith(JOURNAL_PREFIX):
        raise ValueError(f"--storage must be {JOURNAL_PREFIX}FILE, got {storage!r}")
    return JournalStorage(JournalFileBackend(storage.removeprefix(JOURNAL_PREFIX)))


def prepare_study(spec: SweepSpec, storage: str, study_name: str = STUDY_NAME) -> None:
    """Create the shared study in ``storage`` and enqueue the spec's initial points once,
    before the processes that share it start."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=journal_storage(storage),
        study_name=study_name,
        direction=spec.objective.direction,
    )
    for point in spec.search.initial_points:
        study.enqueue_trial(dict(point))


def make_pruner(spec: SweepSpec, name: str) -> Any:
    """Optuna's pruner for ``--pruner``: ``sh`` is successive halving at the spec's ASHA
    ``grace_period`` and ``reduction_factor`` (the scheduler's defaults if it has none)."""
    import optuna

    from sweeps.config.spec import SchedulerSpec

    if name == "none":
        return optuna.pruners.NopPruner()
    sched = spec.search.scheduler or SchedulerSpec()
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=sched.grace_period, reduction_factor=int(sched.reduction_factor)
    )


def make_study(spec: SweepSpec, options: Options) -> optuna.Study:
    """A new in-memory study (initial points enqueued), or the shared one in
    ``options.storage`` (made by :func:`prepare_study`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = spec.search.seed if options.sampler_seed is None else options.sampler_seed
    kwargs = {
        "sampler": optuna.samplers.TPESampler(seed=seed),
        "pruner": make_pruner(spec, options.pruner),
    }
    if options.storage:
        return optuna.load_study(
            study_name=options.study_name, storage=journal_storage(options.storage), **kwargs
        )
    study = optuna.create_study(direction=spec.objective.direction, **kwargs)
    for point in spec.search.initial_points:
        study.enqueue_trial(dict(point))
    return study


def max_epochs(spec: SweepSpec, pruner: str) -> int:
    """The most epochs a trial trains: the space's ``epochs`` constant, capped by the spec's
    ASHA ``max_t`` when successive halving stands in for ASHA."""
    epochs = spec.search.space.get("epochs")
    most = int(getattr(epochs, "value", DEFAULT_EPOCHS))
    if pruner != "none" and spec.search.scheduler is not None:
        most = min(most, spec.search.scheduler.max_t)
    return most


def run(spec: SweepSpec, options: Options | None = None) -> dict[str, Any]:
    """Run the study described by ``spec``; return its totals and the best model's test score.

    With ``options.storage``, this process stops when the shared study holds
    ``search.num_samples`` trials; a trial created beyond that (two processes finishing at the
    same moment) is pruned at once, untrained, and counted in ``surplus_trials``.
    """
    import keras
    import optuna

    from benchmarks.spec_data import family_and_splits
    from sweeps.search.define_by_run import SpaceFunction

    options = options or Options()
    started = time.perf_counter()
    family, splits = family_and_splits(spec)
    if not isinstance(family, KerasFamily):
        raise TypeError(
            f"{spec.trainable} is a {type(family).__name__}; plain Optuna needs a KerasFamily "
            "(a family with build())"
        )
    objective = spec.objective
    tally = Tally(objective)
    space = SpaceFunction(spec.search.space)
    limit = spec.search.num_samples
    epochs = max_epochs(spec, options.pruner)
    surplus = 0

    def optimize(trial: optuna.Trial) -> float:
        nonlocal surplus
        if trial.number >= limit:  # only with shared storage: the others filled the budget
            surplus += 1
            trial.study.stop()
            raise optuna.TrialPruned("the shared study already has its trials")
        config = {**space(trial), **trial.params}
        config["epochs"] = epochs
        pruning = pruning_reporter(trial, objective.metric) if options.pruner != "none" else None
        t0 = time.perf_counter()
        model, history = _fit(family, config, splits, objective, [pruning] if pruning else [])
        fit_s = time.perf_counter() - t0
        best = _record(tally, trial.number, config, model, history, fit_s)
        tally.per_trial[-1]["state"] = "PRUNED" if pruning and pruning.pruned else "COMPLETE"
        if pruning and pruning.pruned:
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        return objective.worst if best is None else best

    study = make_study(spec, options)
    if options.storage:
        stop_at_limit = optuna.study.MaxTrialsCallback(limit, states=None)
        study.optimize(optimize, n_trials=None, callbacks=[stop_at_limit])
    else:
        study.optimize(optimize, n_trials=limit)

    test_metric = spec.champion_objective.metric
    test_metrics: dict[str, float] = {}
    if tally.best_model is not None:
        test_metrics = family.evaluate(tally.best_model, splits.test, splits.schema)
    keras.backend.clear_session()
    return {
        "metric": objective.metric,
        "mode": objective.mode,
        "test_metric": test_metric,
        "trials": len(tally.per_trial),
        "surplus_trials": surplus,
        "epochs_trained": tally.epochs,
        "compute_s": tally.compute_s,
        "best_val": tally.best_val,
        "test_value": test_metrics.get(test_metric),
        "test_metrics": test_metrics,
        "best_config": tally.best_config,
        "per_trial": tally.per_trial,
        "inner_wall_s": time.perf_counter() - started,
    }


def _record(
    tally: Tally,
    number: int,
    config: dict[str, Any],
    model: Any,
    history: dict[str, list[float]],
    fit_s: float,
) -> float | None:
    """Add one trained trial to ``tally``; return its best value of the objective."""
    objective = tally.objective
    curve = history.get(objective.metric, [])
    best = objective.best(v for v in curve if math.isfinite(v))
    tally.compute_s += fit_s
    tally.epochs += len(curve)
    tally.per_trial.append(
        {"number": number, "epochs": len(curve), "best_val": best, "fit_s": fit_s}
    )
    if objective.better(best, tally.best_val):
        tally.best_val, tally.best_model, tally.best_config = best, model, config
    return best


def replay(spec: SweepSpec, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Train each ``{"config": ..., "epochs": N}`` for exactly N epochs (no early stopping,
    no pruning), one after another in this process; each fit's time and best value."""
    import keras

    from benchmarks.spec_data import family_and_splits

    started = time.perf_counter()
    family, splits = family_and_splits(spec)
    objective = spec.objective
    done = []
    for item in trials:
        keras.backend.clear_session(free_memory=False)  # as a reused Ray actor does per trial
        config = {**item["config"], "epochs": int(item["epochs"])}
        clock = epoch_clock()
        t0 = time.perf_counter()
        _, history = _fit(family, config, splits, objective, [clock], early_stopping=False)
        fit_s = time.perf_counter() - t0
        curve = history.get(objective.metric, [])
        best = objective.best(v for v in curve if math.isfinite(v))
        ends = [t - t0 for t in clock.ends]
        done.append(
            {
                **item,
                "epochs_run": len(curve),
                "best_val": best,
                "fit_s": fit_s,
                "epoch_ends_s": ends,
            }
        )
    return {
        "metric": objective.metric,
        "mode": objective.mode,
        "trials": len(done),
        "epochs_trained": sum(d["epochs_run"] for d in done),
        "fit_s_total": sum(d["fit_s"] for d in done),
        "best_val": objective.best(d["best_val"] for d in done),
        "per_trial": done,
        "inner_wall_s": time.perf_counter() - started,
    }


def epoch_clock() -> Any:
    """A Keras callback keeping the ``time.perf_counter()`` moment each epoch ends (``ends``)."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.ends: list[float] = []

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.ends.append(time.perf_counter())

    return EpochClock()


def pruning_reporter(trial: optuna.Trial, metric: str) -> Any:
    """A Keras callback reporting ``metric`` to ``trial`` each epoch (``trial.report(value,
    epoch)``, epochs counted from 1 as the sweep's ASHA counts them). When
    ``trial.should_prune()`` it ends training and sets ``pruned``/``pruned_at``; the caller
    keeps the model (early stopping restores its best weights at the end of ``fit``) and then
    raises ``optuna.TrialPruned``."""
    import keras

    class PruningReporter(keras.callbacks.Callback):
        pruned = False
        pruned_at: int | None = None

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            value = (logs or {}).get(metric)
            if value is None or not math.isfinite(value):
                return
            trial.report(float(value), epoch + 1)
            if trial.should_prune():
                self.pruned, self.pruned_at = True, epoch + 1
                self.model.stop_training = True

    return PruningReporter()


def _fit(
    family: KerasFamily,
    config: dict[str, Any],
    splits: Splits,
    objective: Objective,
    extra_callbacks: Sequence[Any] = (),
    early_stopping: bool = True,
) -> tuple[Any, dict[str, list[float]]]:
    """Build and fit one model as the family's ``train`` does; with early stopping the weights
    end at the best epoch. ``extra_callbacks``: further Keras callbacks (a
    :func:`pruning_reporter`, an :func:`epoch_clock`)."""
    import keras

    from trainable.pipeline import fit_inputs

    seed = int(config.get("seed", 0))
    keras.utils.set_random_seed(seed)
    model = family.build(config, splits.schema, splits.train)
    batch_size = int(config.get("batch_size", DEFAULT_BATCH_SIZE))
    train, validation = fit_inputs(splits, batch_size, seed, family.xy)
    callbacks = list(extra_callbacks)
    if early_stopping:
        stop = keras.callbacks.EarlyStopping(
            monitor=objective.metric,
            patience=int(config.get("patience", DEFAULT_PATIENCE)),
            mode=objective.mode,
            restore_best_weights=True,  # the sweep registers its best checkpoint, not the last
        )
        callbacks.insert(0, stop)
    history = model.fit(
        train,
        validation_data=validation,
        epochs=int(config.get("epochs", DEFAULT_EPOCHS)),
        shuffle=False,  # the pipeline shuffles
        verbose=0,
        callbacks=callbacks,
    )
    return model, history.history


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="spec file or shipped family name")
    parser.add_argument("--trials", type=int, help="trials in all (default search.num_samples)")
    parser.add_argument("--epochs", type=int, help="most epochs a trial trains (default: spec)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pruner", choices=PRUNERS, default="none")
    parser.add_argument("--storage", help=f"{JOURNAL_PREFIX}FILE: a study shared by processes")
    parser.add_argument("--study-name", default=STUDY_NAME)
    parser.add_argument("--sampler-seed", type=int, help="TPE seed (default search.seed)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="spec override KEY=VALUE"
    )
    parser.add_argument("--replay", type=Path, help="JSON list of {config, epochs} to train")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the study (or the replay) and write its result as JSON to
    ``--out``."""
    args = parse_args(argv)
    set_defaults()
    overrides = list(args.overrides)
    if args.trials is not None:
        overrides.append(f"search.num_samples={args.trials}")
    if args.epochs is not None:
        overrides.append(f"search.space.epochs={args.epochs}")
    spec = load_spec(args.spec, overrides)
    if args.replay:
        result = replay(spec, json.loads(args.replay.read_text()))
    else:
        options = Options(args.pruner, args.storage, args.sampler_seed, args.study_name)
        result = run(spec, options)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
