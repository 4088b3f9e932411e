"""The spec's search section becomes a seeded Optuna TPE searcher with the right space."""

from __future__ import annotations

from helpers import DEFAULT_SPEC

from sweeps.config.spec import load_spec
from sweeps.running.search import make_searcher
from trainable.families.abalone import REFERENCE_CONFIG

SUGGESTIONS = 12  # past Optuna's 10 random start-up trials, so TPE itself is exercised


def _objective(config: dict) -> float:
    """A deterministic stand-in for a trial's val_rmse."""
    return abs(config["learning_rate"] - 3e-3) * 100 + config["layers"] + config["dropout"]


def _suggestions(seed: int) -> list[dict]:
    spec = load_spec(DEFAULT_SPEC, [f"search.seed={seed}", "search.max_concurrent=1"])
    searcher = make_searcher(spec)
    configs = []
    for i in range(SUGGESTIONS):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"val_rmse": _objective(config)})
    return configs


def test_same_seed_suggests_the_same_configurations():
    assert _suggestions(seed=7) == _suggestions(seed=7)


def test_different_seeds_suggest_different_configurations():
    assert _suggestions(seed=1)[1:] != _suggestions(seed=2)[1:]


def test_first_suggestion_is_the_reference_model():
    first = _suggestions(seed=0)[0]
    assert {k: first[k] for k in REFERENCE_CONFIG} == REFERENCE_CONFIG


def test_suggestions_stay_inside_the_space():
    spec = load_spec(DEFAULT_SPEC)
    for config in _suggestions(seed=3):
        assert 1 <= config["layers"] <= 4
        assert config["units"] in (16, 32, 64, 128)
        assert 1e-4 <= config["learning_rate"] <= 1e-2
        assert 0.0 <= config["dropout"] <= 0.3
        assert set(config) == set(spec.searched) | set(spec.constants)


def test_stop_epochs_are_the_rungs_of_rays_asha_bracket():
    import math

    from sweeps.running.search import make_scheduler, stop_epochs

    for grace, max_t, factor in [(10, 100, 3), (5, 20, 3), (1, 4, 2), (10, 90, 3), (3, 50, 2.5)]:
        spec = load_spec(
            DEFAULT_SPEC,
            [
                f"search.scheduler={{type: asha, max_t: {max_t}, grace_period: {grace}, "
                f"reduction_factor: {factor}}}"
            ],
        )
        rungs = [milestone for milestone, _ in make_scheduler(spec)._brackets[0]._rungs]
        assert stop_epochs(spec) == sorted({math.ceil(r) for r in rungs} | {max_t})


def test_a_sweep_without_a_scheduler_has_no_stop_epochs():
    from sweeps.running.search import stop_epochs

    assert stop_epochs(load_spec(DEFAULT_SPEC, ["search.scheduler=null"])) == []
