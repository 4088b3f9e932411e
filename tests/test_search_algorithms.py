"""``search.algorithm`` picks one of Optuna's samplers, seeded and checked before anything runs;
``search.stop`` and ``search.warm_start`` are validated like every other field."""

from __future__ import annotations

import importlib.util

import pytest
from helpers import DEFAULT_SPEC
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.config.spec import load_spec
from sweeps.running.search import make_searcher

#: GPSampler needs PyTorch, the project's `gp` extra, which the README's install leaves out
#: (PyPI's default build is several GB of CUDA libraries); `.ci/run` installs it.
NEEDS_GP_EXTRA = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="search.algorithm gp needs the gp extra (PyTorch): "
    "pip install -c requirements/constraints.txt -e '.[dev,gp]'",
)
ALGORITHMS = ["tpe", "random", "grid", "cmaes", pytest.param("gp", marks=NEEDS_GP_EXTRA)]
#: A finite space (no continuous parameter) for the grid.
FINITE = [
    "search.space.dropout=0.1",
    "search.space.learning_rate={choice: [0.0003, 0.001, 0.003]}",
    "search.initial_points=[]",
]
runner = CliRunner()


def _spec(algorithm: str, *overrides: str):
    extra = FINITE if algorithm == "grid" else []
    return load_spec(
        DEFAULT_SPEC,
        [f"search.algorithm={algorithm}", "search.max_concurrent=1", *extra, *overrides],
    )


def _objective(config: dict) -> float:
    """A deterministic stand-in for a trial's val_rmse."""
    return abs(config["learning_rate"] - 3e-3) * 100 + config["layers"] + config["units"] / 100


def _suggestions(spec, count: int) -> list[dict]:
    """What the sweep's searcher suggests, trial after trial, told each trial's value."""
    searcher = make_searcher(spec)
    configs = []
    for i in range(count):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"val_rmse": _objective(config)})
    return configs


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_repeats_its_suggestions_with_the_same_seed(algorithm):
    # 12 trials: past the start-up trials of TPE and GP (10), so the model itself suggests.
    first = _suggestions(_spec(algorithm, "search.seed=5"), 12)
    assert first == _suggestions(_spec(algorithm, "search.seed=5"), 12)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_suggests_inside_the_space_with_the_constants(algorithm):
    spec = _spec(algorithm)
    for config in _suggestions(spec, 12):
        for name, param in spec.searched.items():
            assert param.contains(config[name]), (name, config[name])
        assert config["epochs"] == 100 and config["patience"] == 10


@pytest.mark.parametrize("algorithm", ["random", "cmaes"])
def test_another_seed_suggests_otherwise(algorithm):
    assert _suggestions(_spec(algorithm, "search.seed=1"), 6) != _suggestions(
        _spec(algorithm, "search.seed=2"), 6
    )


def test_grid_visits_every_point_once():
    spec = _spec("grid", "search.space.units={choice: [32, 64]}", "search.space.layers=2")
    # The grid: 2 units x 2 batch_norm x 3 learning rates x 4 batch sizes x 2 optimizers.
    configs = _suggestions(spec, 96)
    points = {tuple(c[k] for k in spec.searched) for c in configs}
    assert len(points) == 96


def _validate(*overrides: str):
    args = ["validate", str(DEFAULT_SPEC)]
    for override in overrides:
        args += ["--set", override]
    return runner.invoke(app, args)


BAD = {
    "unknown algorithm": (["search.algorithm=bayes"], "search.algorithm = 'bayes': must be"),
    "grid over a continuous parameter": (
        ["search.algorithm=grid", "search.initial_points=[]"],
        "search.space.dropout: uniform is continuous and search.algorithm grid needs finite",
    ),
    "grid smaller than num_samples": (
        [*FINITE, "search.algorithm=grid", "search.num_samples=1000"],
        "search.num_samples = 1000 exceeds the grid's 768 points; set it to at most 768",
    ),
    "cmaes with two objectives": (
        ["search.algorithm=cmaes", "search.metrics={val_rmse: min, val_mae: min}"],
        "search.algorithm = 'cmaes' handles one objective",
    ),
    "stop without a rule": (["search.stop={}"], "search.stop: give target, patience"),
    "stop patience zero": (["search.stop.patience=0"], "search.stop.patience = 0"),
    "stop negative min_delta": (
        ["search.stop.patience=3", "search.stop.min_delta=-1"],
        "search.stop.min_delta = -1",
    ),
    "stop target not a number": (["search.stop.target=low"], "search.stop.target = 'low'"),
    "warm start from nothing": (["search.warm_start="], "search.warm_start"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_search_fields_are_one_line_naming_the_field(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    overrides, needle = BAD[case]
    result = _validate(*overrides)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert needle in result.output, result.output
