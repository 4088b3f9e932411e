"""``search.warm_start``: a sweep learns from earlier sweeps' trials (read back from MLflow)
before its first suggestion, never reruns them, and says on its parent run what it learned from."""

from __future__ import annotations

import pytest
from helpers import DEFAULT_SPEC, small_spec_overrides
from mlflow import MlflowClient

from sweeps.config.spec import load_spec
from sweeps.errors import PreflightError
from sweeps.running.preflight import preflight
from sweeps.running.sweep import run_sweep
from sweeps.search.warm_start import TAG_WARM_NOTE, TAG_WARM_START

N = 3  # trials of the warm-started sweep; the cold one gets 2N


def _spec(tmp, trials: int, seed: int, *more: str):
    overrides = small_spec_overrides(
        tmp,
        **{
            "search.num_samples": trials,
            "search.seed": seed,
            "search.space.epochs": 2,
            "search.initial_points": "[]",
        },
    )
    return load_spec(DEFAULT_SPEC, [*overrides, *more])


@pytest.fixture(scope="module")
def store(ray_session, tmp_path_factory):
    """One tracking store holding an earlier sweep of 12 trials (past TPE's 10 start-up ones)."""
    tmp = tmp_path_factory.mktemp("warm")
    earlier = run_sweep(_spec(tmp, 12, seed=1))
    return tmp, earlier


@pytest.fixture(scope="module")
def cold_and_warm(store):
    tmp, earlier = store
    cold = run_sweep(_spec(tmp, 2 * N, seed=0))
    warm = run_sweep(_spec(tmp, N, 0, f"search.warm_start={earlier.run_name}"))
    return cold, warm


def test_the_earlier_trials_are_not_rerun(cold_and_warm):
    _, warm = cold_and_warm
    children = MlflowClient(warm.tracking_uri).search_runs(
        [warm.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{warm.parent_run_id}'"
    )
    assert len(children) == N == len(warm.trials)


def test_the_parent_run_names_the_sweeps_it_learned_from(store, cold_and_warm):
    _, earlier = store
    _, warm = cold_and_warm
    tags = MlflowClient(warm.tracking_uri).get_run(warm.parent_run_id).data.tags
    assert tags[TAG_WARM_START] == earlier.run_name
    assert f"warm start: 12 trials from {earlier.run_name}" in tags[TAG_WARM_NOTE]
    assert warm.warm_start.startswith("warm start: 12 trials from")


def test_experiment_learns_from_every_compatible_finished_sweep(store, cold_and_warm):
    tmp, earlier = store
    cold, warm = cold_and_warm
    prior = preflight(_spec(tmp, N, 0, "search.warm_start=experiment")).prior
    assert set(prior.sweeps) == {earlier.run_name, cold.run_name, warm.run_name}
    assert len(prior.trials) == 12 + 2 * N + N


def test_trials_outside_todays_space_are_dropped_and_counted(store):
    tmp, earlier = store
    spec = _spec(
        tmp, N, 0, "search.space.units={choice: [16, 32]}", f"search.warm_start={earlier.run_name}"
    )
    prior = preflight(spec).prior
    kept = [t.params["units"] for t in prior.trials]
    assert set(kept) <= {16, 32}
    assert prior.dropped == 12 - len(kept) > 0
    assert f"{prior.dropped} dropped (outside today's space)" in prior.summary()


def test_a_sweep_of_another_metric_is_refused_by_name(store):
    tmp, earlier = store
    spec = _spec(tmp, N, 0, "search.metric=val_mae", f"search.warm_start={earlier.run_name}")
    with pytest.raises(PreflightError) as caught:
        preflight(spec)
    assert caught.value.problems == [
        f"search.warm_start = {earlier.run_name!r}: sweep {earlier.run_name} optimised "
        "val_rmse (min), not val_mae (min)"
    ]


def test_an_unknown_sweep_is_one_line_naming_the_field(store):
    tmp, _ = store
    with pytest.raises(PreflightError) as caught:
        preflight(_spec(tmp, N, 0, "search.warm_start=no-such-sweep"))
    assert caught.value.problems[0].startswith("search.warm_start = 'no-such-sweep': no sweep")
