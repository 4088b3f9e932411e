"""Each search-space type owns its rules: YAML in and out, membership, Tune and Optuna."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from sweeps.config import space
from sweeps.config.space import Choice, Constant, LogUniform, Param, RandInt, Uniform, parse_param


def test_yaml_round_trip():
    for raw in (
        {"uniform": [0.0, 0.3]},
        {"loguniform": [1e-4, 1e-2]},
        {"randint": [1, 4]},
        {"choice": [16, 32]},
        64,
    ):
        assert parse_param(raw).to_yaml() == raw


@pytest.mark.parametrize(
    ("param", "inside", "outside"),
    [
        (Uniform(low=0, high=1), [0, 0.5, 1], [1.5, True, "0.5"]),
        (LogUniform(low=1e-3, high=1), [1e-3, 0.1], [0, 2]),
        (RandInt(low=1, high=4), [1, 4, 2.0], [0, 5, 2.5, True]),
        (Choice(values=[1, 2, "x"]), [1, 2, "x"], [True, 3, "y"]),
        (Constant(value=7), [7], [8]),
    ],
)
def test_membership(param: Param, inside: list[Any], outside: list[Any]):
    assert all(param.contains(v) for v in inside)
    assert not any(param.contains(v) for v in outside)


def test_randint_is_inclusive_for_tune_and_optuna():
    param = RandInt(low=1, high=4)
    assert param.to_optuna().high == 4
    assert param.to_tune().upper == 5  # Tune's upper bound is exclusive


def test_a_constant_is_not_searched():
    assert not Constant(value=3).searched
    with pytest.raises(TypeError):
        Constant(value=3).to_optuna()


def test_a_new_distribution_is_one_class(monkeypatch, tmp_path):
    """A class registered in DISTRIBUTIONS is read from YAML, searched by Tune, drawn in the
    summary's Optuna study and checked for initial points, with no other change."""

    class Odd(Param):
        kind: ClassVar[str] = "odd"
        high: int

        @classmethod
        def from_args(cls, args: Any) -> Param:
            return cls(high=args)

        def to_yaml(self) -> Any:
            return {self.kind: self.high}

        def contains(self, value: Any) -> bool:
            return isinstance(value, int) and value % 2 == 1 and 1 <= value <= self.high

        def suggest(self, trial: Any, name: str) -> Any:
            return trial.suggest_categorical(name, list(range(1, self.high + 1, 2)))

        def to_optuna(self) -> Any:
            from optuna.distributions import CategoricalDistribution

            return CategoricalDistribution(list(range(1, self.high + 1, 2)))

    monkeypatch.setitem(space.DISTRIBUTIONS, "odd", Odd)
    from sweeps.config.spec import load_spec
    from sweeps.record.artifacts import build_study
    from sweeps.results import TrialRecord
    from sweeps.running.search import make_searcher

    spec = load_spec(None, ["search.space.layers={odd: 5}", "search.initial_points=[]"])
    assert spec.to_dict()["search"]["space"]["layers"] == {"odd": 5}
    searcher, drawn = make_searcher(spec), set()
    for i in range(30):
        drawn.add(searcher.suggest(f"t{i}")["layers"])
        searcher.on_trial_complete(f"t{i}", {"val_rmse": 1.0})
    assert drawn == {1, 3, 5}
    record = TrialRecord(1, best_value=2.0, config={"layers": 3})
    assert build_study([record], spec).trials[0].params == {"layers": 3}
    with pytest.raises(Exception, match="outside the space"):
        load_spec(None, ["search.space.layers={odd: 5}", "search.initial_points=[{layers: 2}]"])
