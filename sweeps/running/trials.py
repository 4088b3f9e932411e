"""The trials of one sweep on Ray Tune: a new or restored Tuner with the sweep's callbacks,
run to the end, and its results read back as :class:`~sweeps.results.TrialRecord`."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sweeps.results import ERROR, TERMINATED, TrialRecord

if TYPE_CHECKING:
    from ray.tune import ResultGrid

    from sweeps.record.runs import SweepTracker
    from sweeps.running.sweep import SweepRun
    from trainable.contract import Objective


def run_trials(run: SweepRun) -> ResultGrid:
    """Every trial of ``run`` (the unfinished ones of a restored sweep), each mirrored into
    MLflow, with live progress; Ray must already be running."""
    from ray import tune

    from sweeps.environment import set_defaults
    from sweeps.registration.registrar import StartWhenCoresFree
    from sweeps.running.callbacks.live import attach, attach_stopper, detach, detach_stopper
    from sweeps.running.callbacks.progress import SweepProgress
    from sweeps.running.callbacks.trial_runs import MlflowTrialLogger
    from sweeps.running.preflight import ship_local_modules
    from sweeps.running.search import stop_epochs
    from sweeps.search.stop_rules import StopRules
    from trainable.contract import TrialSetup, run_trial

    spec = run.spec
    search = spec.search
    set_defaults()  # before the Tuner: no CSV or TensorBoard loggers among them
    ship_local_modules()
    setup = TrialSetup(
        family=run.prepared.family,
        data=run.prepared.splits.without_test(),
        objective=spec.objective,
        stop_epochs=tuple(stop_epochs(spec)),
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, setup=setup),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    already_done = run.tracker.finished_trials() if run.restore_from else 0
    progress = SweepProgress(
        search.num_samples, spec.objective, console=run.console, already_done=already_done
    )
    warm_up = StartWhenCoresFree(
        run.registrar, search.num_samples, search.max_concurrent, already_done=already_done
    )
    if run.restore_from:
        # Trials that were running resume from their checkpoints; failed ones stay failed.
        tuner = tune.Tuner.restore(
            run.restore_from, trainable=trainable, resume_unfinished=True, resume_errored=False
        )
    else:
        tuner = _new_tuner(run, trainable)
    run.stop_rules = StopRules(search, spec.objective)
    callbacks = [MlflowTrialLogger(run.tracker), progress, run.stop_rules]
    if spec.register.enabled:
        callbacks.append(warm_up)
    attach(run.run_name, callbacks)
    attach_stopper(run.run_name, run.stop_rules)
    try:
        with progress:
            return tuner.fit()
    finally:
        detach(run.run_name)
        detach_stopper(run.run_name)


def _new_tuner(run: SweepRun, trainable: Any) -> Any:
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from sweeps.record.runs import trial_run_name
    from sweeps.running.callbacks.live import LiveCallbacks, LiveStopper
    from sweeps.running.callbacks.trial_runs import trial_number
    from sweeps.running.search import make_scheduler, make_searcher

    spec = run.spec
    search = spec.search
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=spec.objective.metric,
            mode=spec.objective.mode,
            search_alg=make_searcher(spec, run.prepared.prior),
            scheduler=make_scheduler(spec),
            num_samples=search.num_samples,
            time_budget_s=search.time_budget_s,
            reuse_actors=True,
            trial_name_creator=lambda t: trial_run_name(trial_number(t)),
            trial_dirname_creator=lambda t: trial_run_name(trial_number(t)),
        ),
        run_config=tune.RunConfig(
            name=run.run_name,
            storage_path=run.prepared.storage_path,
            stop=LiveStopper(run.run_name),  # search.stop's rules (sweeps/search/stop_rules.py)
            # result.json only (the trial histories read back after the sweep); run_trials
            # keeps Tune from adding its CSV and TensorBoard loggers besides.
            callbacks=[LiveCallbacks(run.run_name), JsonLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=search.max_failures),
            # The trainable's newest checkpoint holds its best model so far; keep only that.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=1 if run.verbose else 0,
        ),
    )


def collect(
    grid: ResultGrid,
    tracker: SweepTracker,
    objective: Objective,
    other_metrics: Sequence[str] = (),
) -> list[TrialRecord]:
    """A record per trial, in trial order, its best value by ``objective`` from its history
    (its child run id if MLflow has taken the trial's writes by then), and the values of
    ``objective.metric`` and of ``other_metrics`` (a sweep's other objectives) at its best
    epoch: the model its checkpoint holds."""
    tracker.flush(tracker.end_wait())  # the first wait of the end's one bound
    trials = []
    for result in grid:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or os.path.basename(result.path)
        history = every_epoch(result.metrics_dataframe)
        best_value = best_epoch = None
        curve: list[float] = []
        values: dict[str, float] = {}
        if history is not None and objective.metric in history:
            column = history[objective.metric].dropna()
            curve = [float(v) for v in column]
            if len(column):
                idx = min(column.index, key=lambda i: objective.key(column[i]))  # first best
                best_value = float(column[idx])
                if "epoch" in history:
                    best_epoch = int(history.loc[idx, "epoch"])
                values = _values_at(history, idx, [objective.metric, *other_metrics])
        trials.append(
            TrialRecord(
                number=_number_from_path(result.path),
                trial_id=trial_id,
                status=ERROR if result.error else TERMINATED,
                best_value=best_value,
                best_epoch=best_epoch,
                epochs=int(metrics.get("epoch", 0) or 0),
                config=dict(result.config or {}),
                run_id=tracker.child_run_id(trial_id),
                history=curve,
                values=values,
            )
        )
    return sorted(trials, key=lambda t: t.number)


def every_epoch(history: Any) -> Any:
    """A trial's history (Tune's dataframe of its reports) with one row per epoch: the epochs
    that rode along with a report (:data:`~trainable.contract.EARLIER_EPOCHS`) unpacked."""
    import pandas as pd

    from trainable.contract import EARLIER_EPOCHS, reported_epochs

    if history is None or EARLIER_EPOCHS not in history:
        return history
    rows = []
    for report in history.to_dict("records"):
        if not isinstance(report.get(EARLIER_EPOCHS), list):
            report.pop(EARLIER_EPOCHS, None)  # NaN in a report that carried none
        rows.extend(reported_epochs(report))
    return pd.DataFrame(rows)


def _values_at(history: Any, row: Any, metrics: Sequence[str]) -> dict[str, float]:
    """The finite values of ``metrics`` in one row of a trial's history."""
    values = {}
    for name in dict.fromkeys(metrics):
        try:
            value = float(history.loc[row, name]) if name in history else math.nan
        except (TypeError, ValueError):  # not a number
            value = math.nan
        if math.isfinite(value):
            values[name] = value
    return values


def _number_from_path(path: str) -> int:
    tail = os.path.basename(path.rstrip("/"))
    digits = tail.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else 0
