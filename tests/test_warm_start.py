"""``search.warm_start``: a sweep learns from earlier sweeps' trials (read back from MLflow)
before its first suggestion, never reruns them, and says on its parent run what it learned from."""

from __future__ import annotations

import pytest
from helpers import exploratory_spec
from mlflow import MlflowClient

from sweeps.errors import PreflightError
from sweeps.running.preflight import preflight
from sweeps.running.sweep import run_sweep
from sweeps.search.warm_start import TAG_WARM_NOTE, TAG_WARM_START

N = 3  # trials of the warm-started sweep


@pytest.fixture(scope="module")
def store(exploratory_sweep):
    """The tracking store of the session's exploratory sweep: 12 trials, past TPE's 10 start-up
    ones (conftest.py)."""
    return exploratory_sweep


@pytest.fixture(scope="module")
def warm(store):
    tmp, earlier = store
    return run_sweep(exploratory_spec(tmp, N, 0, f"search.warm_start={earlier.run_name}"))


def test_the_earlier_trials_are_not_rerun(warm):
    children = MlflowClient(warm.tracking_uri).search_runs(
        [warm.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{warm.parent_run_id}'"
    )
    assert len(children) == N == len(warm.trials)


def test_the_parent_run_names_the_sweeps_it_learned_from(store, warm):
    _, earlier = store
    tags = MlflowClient(warm.tracking_uri).get_run(warm.parent_run_id).data.tags
    assert tags[TAG_WARM_START] == earlier.run_name
    assert f"warm start: 12 trials from {earlier.run_name}" in tags[TAG_WARM_NOTE]
    assert warm.warm_start.startswith("warm start: 12 trials from")


def test_experiment_learns_from_every_compatible_finished_sweep(store, warm):
    tmp, earlier = store
    prior = preflight(exploratory_spec(tmp, N, 0, "search.warm_start=experiment")).prior
    assert set(prior.sweeps) == {earlier.run_name, warm.run_name}
    assert len(prior.trials) == 12 + N


def test_trials_outside_todays_space_are_dropped_and_counted(store):
    tmp, earlier = store
    spec = exploratory_spec(
        tmp, N, 0, "search.space.units={choice: [16, 32]}", f"search.warm_start={earlier.run_name}"
    )
    prior = preflight(spec).prior
    kept = [t.params["units"] for t in prior.trials]
    assert set(kept) <= {16, 32}
    assert prior.dropped == 12 - len(kept) > 0
    assert f"{prior.dropped} dropped (outside today's space)" in prior.summary()


def test_a_sweep_of_another_metric_is_refused_by_name(store):
    tmp, earlier = store
    spec = exploratory_spec(
        tmp, N, 0, "search.metric=val_mae", f"search.warm_start={earlier.run_name}"
    )
    with pytest.raises(PreflightError) as caught:
        preflight(spec)
    assert caught.value.problems == [
        f"search.warm_start = {earlier.run_name!r}: sweep {earlier.run_name} optimised "
        "val_rmse (min), not val_mae (min)"
    ]


def test_an_unknown_sweep_is_one_line_naming_the_field(store):
    tmp, _ = store
    with pytest.raises(PreflightError) as caught:
        preflight(exploratory_spec(tmp, N, 0, "search.warm_start=no-such-sweep"))
    assert caught.value.problems[0].startswith("search.warm_start = 'no-such-sweep': no sweep")
