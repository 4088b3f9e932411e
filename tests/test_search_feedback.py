"""What the sweep's searcher tells Optuna about each trial: the trial's best value, and PRUNED
for a trial the scheduler stopped at a rung (as Optuna's own pruners mark it)."""

from __future__ import annotations

import optuna
from helpers import DEFAULT_SPEC

from sweeps.config.spec import load_spec
from sweeps.running.search import make_searcher
from sweeps.search.samplers import make_sampler

State = optuna.trial.TrialState


def _searcher(*overrides: str):
    """The default spec's searcher (ASHA max_t 100), one trial at a time."""
    return make_searcher(load_spec(DEFAULT_SPEC, ["search.max_concurrent=1", *overrides]))


def _epoch(step: int, value: float, best: float) -> dict:
    return {"training_iteration": step, "epoch": step, "val_rmse": value, "best_val_rmse": best}


def _study_trial(searcher) -> optuna.trial.FrozenTrial:
    return searcher.searcher._ot_study.trials[-1]


def test_a_trial_that_ran_its_course_is_complete_with_its_best_value_not_its_last():
    searcher = _searcher()
    searcher.suggest("t")
    epochs = [_epoch(1, 3.0, 3.0), _epoch(2, 2.5, 2.5), _epoch(3, 2.8, 2.5)]
    for result in epochs:
        searcher.on_trial_result("t", result)
    searcher.on_trial_complete("t", epochs[-1])  # Tune repeats the last result at the end

    trial = _study_trial(searcher)
    assert trial.state == State.COMPLETE
    assert trial.value == 2.5


def test_a_trial_stopped_at_a_rung_is_pruned_with_its_best_value_at_that_epoch():
    searcher = _searcher()
    searcher.suggest("t")
    for step in range(1, 10):
        searcher.on_trial_result("t", _epoch(step, 3.0 - step / 10, 3.0 - step / 10))
    # The scheduler's STOP at epoch 10: Tune passes that result to on_trial_complete only.
    searcher.on_trial_complete("t", _epoch(10, 2.4, 2.1))

    trial = _study_trial(searcher)
    assert trial.state == State.PRUNED
    assert trial.last_step == 10
    assert trial.intermediate_values[10] == 2.1


def test_intermediate_values_are_the_best_so_far():
    searcher = _searcher()
    searcher.suggest("t")
    searcher.on_trial_result("t", _epoch(1, 2.0, 2.0))
    searcher.on_trial_result("t", _epoch(2, 2.6, 2.0))

    assert _study_trial(searcher).intermediate_values == {1: 2.0, 2: 2.0}


def test_a_trial_stopped_at_the_last_epoch_of_the_scheduler_is_complete():
    searcher = _searcher("search.scheduler={type: asha, max_t: 3, grace_period: 1}")
    searcher.suggest("t")
    searcher.on_trial_result("t", _epoch(1, 3.0, 3.0))
    searcher.on_trial_result("t", _epoch(2, 2.5, 2.5))
    searcher.on_trial_complete("t", _epoch(3, 2.7, 2.5))  # ASHA stops every trial at max_t

    trial = _study_trial(searcher)
    assert trial.state == State.COMPLETE
    assert trial.value == 2.5


def test_a_trial_without_a_running_best_is_told_its_metric():
    searcher = _searcher()
    searcher.suggest("t")
    searcher.on_trial_result("t", {"training_iteration": 1, "val_rmse": 2.2})
    searcher.on_trial_complete("t", {"training_iteration": 1, "val_rmse": 2.2})

    assert _study_trial(searcher).value == 2.2


def test_tpe_counts_trials_still_running_as_bad_results():
    # Optuna 5's default ("constant liar"): two concurrent suggestions avoid the same spot.
    search = load_spec(DEFAULT_SPEC, ["search.max_concurrent=2"]).search
    assert make_sampler(search)._constant_liar is True
