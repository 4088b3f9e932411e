"""``search.stop`` ends a sweep before its ``num_samples`` trials, and the parent run says why."""

from __future__ import annotations

import pytest
from helpers import DEFAULT_SPEC, small_spec_overrides
from mlflow import MlflowClient

from sweeps.config.spec import load_spec
from sweeps.running.sweep import run_sweep
from sweeps.search.stop_rules import TAG_STOP_REASON, StopRules
from trainable.contract import Objective

PLANNED = 8


def _sweep(tmp, **extra: object):
    overrides = small_spec_overrides(
        tmp,
        **{
            "search.num_samples": PLANNED,
            "search.max_concurrent": 1,
            "search.space.epochs": 2,
            "search.initial_points": "[]",
            **extra,
        },
    )
    outcome = run_sweep(load_spec(DEFAULT_SPEC, overrides))
    parent = MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id)
    return outcome, parent


@pytest.fixture(scope="module")
def reached_target(ray_session, tmp_path_factory):
    # Every abalone model beats val_rmse 50 at its first epoch: the first report ends the sweep.
    return _sweep(tmp_path_factory.mktemp("target"), **{"search.stop.target": 50})


@pytest.fixture(scope="module")
def lost_patience(ray_session, tmp_path_factory):
    # No trial improves on the first by more than 100: the third finished trial ends it.
    return _sweep(
        tmp_path_factory.mktemp("patience"),
        **{"search.stop.patience": 2, "search.stop.min_delta": 100},
    )


def test_a_reached_target_ends_the_sweep_early(reached_target):
    outcome, parent = reached_target
    assert len(outcome.trials) < PLANNED
    assert parent.info.status == "FINISHED"


def test_the_parent_run_says_the_target_was_reached(reached_target):
    _, parent = reached_target
    assert parent.data.tags[TAG_STOP_REASON].startswith("target reached: val_rmse ")


def test_the_best_trial_of_a_target_stopped_sweep_is_registered(reached_target):
    outcome, _ = reached_target
    assert outcome.registration is not None


def test_patience_ends_the_sweep_after_that_many_trials_without_improvement(lost_patience):
    outcome, parent = lost_patience
    assert len(outcome.trials) == 3
    assert parent.data.tags[TAG_STOP_REASON].startswith("no improvement: 2 finished trials")


@pytest.mark.parametrize(
    ("values", "mode", "delta", "stops_after"),
    [
        ([3.0, 2.0, 1.0, 0.5], "min", 0.0, None),  # always improving
        ([3.0, 3.0, 3.5, 4.0], "min", 0.0, 3),  # 3 trials without improvement after the first
        ([3.0, 2.95, 2.92, 2.91], "min", 0.1, 3),  # improving, but never by more than 0.1
        ([0.5, 0.6, 0.7, 0.8], "max", 0.0, None),  # max mode: rising is improving
        ([0.8, 0.7, 0.8, 0.6], "max", 0.0, 3),
    ],
)
def test_patience_counts_finished_trials_without_improvement(values, mode, delta, stops_after):
    spec = load_spec(DEFAULT_SPEC, ["search.stop.patience=3", f"search.stop.min_delta={delta}"])
    rules = StopRules(spec.search, Objective("m", mode))
    stopped_at = None
    for i, value in enumerate(values):
        rules.finished(value)
        if rules.stop_all() and stopped_at is None:
            stopped_at = i
    assert stopped_at == stops_after


def test_target_counts_in_the_search_mode():
    spec = load_spec(DEFAULT_SPEC, ["search.stop.target=0.9"])
    maximise = StopRules(spec.search, Objective("acc", "max"))
    maximise("t1", {"acc": 0.85})
    assert not maximise.stop_all()
    assert maximise("t1", {"acc": 0.9})  # this trial stops first, with its checkpoint ...
    assert not maximise.stop_all()
    maximise.on_trial_complete(0, [], _Ended("t1"))
    assert maximise.stop_all()  # ... then every other one
    minimise = StopRules(spec.search, Objective("loss", "min"))
    minimise("t1", {"loss": 0.95})
    assert not minimise.stop_all()
    assert minimise("t1", {"loss": 0.5})
    minimise.on_trial_error(0, [], _Ended("t1"))
    assert minimise.stop_all()


class _Ended:
    """What the rules read of a Tune trial that ended."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id
