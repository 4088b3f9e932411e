"""Conditional parameters (``when:``): what a condition means, the order parents come in,
the spec errors (one line naming the parameter), initial points and the YAML round trip."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
import yaml
from helpers import DEFAULT_SPEC
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.config.conditions import Condition, ConditionError, active, check_conditions, ordered
from sweeps.config.space import parse_param
from sweeps.config.spec import load_spec, read_yaml, validate_spec
from sweeps.errors import SpecError

SPACE: dict[str, Any] = {
    "optimizer": {"choice": ["adam", "sgd"]},
    "momentum": {"uniform": [0.0, 0.95], "when": {"optimizer": "sgd"}},
    "layers": {"randint": [1, 4]},
    "units_3": {"choice": [16, 32, 64], "when": {"layers": {">=": 3}}},
    "nesterov": {"choice": [True, False], "when": {"optimizer": "sgd", "momentum": {">": 0.5}}},
    "lr": {"loguniform": [0.001, 0.1]},
    "epochs": 3,
}


def _raw(space: dict[str, Any], points: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    raw = read_yaml(DEFAULT_SPEC)
    raw["search"]["space"] = copy.deepcopy(space)
    raw["search"]["initial_points"] = points or []
    return raw


def _problems(space: dict[str, Any], points: list[dict[str, Any]] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate_spec(_raw(space, points))
    return info.value.problems


def _space(**params: Any) -> dict[str, Any]:
    return {name: parse_param(raw) for name, raw in params.items()}


# ------------------------------------------------------------------ what a condition means


@pytest.mark.parametrize(
    ("when", "value", "holds"),
    [
        ("sgd", "sgd", True),
        ("sgd", "adam", False),
        ({"==": "sgd"}, "sgd", True),
        ({"!=": "sgd"}, "adam", True),
        ({"!=": "sgd"}, "sgd", False),
        ([2, 3], 3, True),
        ([2, 3], 4, False),
        ({"in": [2, 3]}, 2, True),
        ({"not_in": [2, 3]}, 4, True),
        ({"not_in": [2, 3]}, 2, False),
        ({"<": 3}, 2, True),
        ({"<": 3}, 3, False),
        ({"<=": 3}, 3, True),
        ({">": 0.5}, 0.6, True),
        ({">": 0.5}, 0.5, False),
        ({">=": 0.5}, 0.5, True),
        ({">": 1, "<": 4, "!=": 2}, 3, True),  # several operators: all must hold
        ({">": 1, "<": 4, "!=": 2}, 2, False),
        ({">": 1}, "adam", False),  # an ordering never holds for a value that is no number
        (True, True, True),
        (True, 1, False),  # a bool equals only a bool
        (1, True, False),
        ({"==": [64, 32]}, [64, 32], True),  # equality with a list value itself
        (None, None, True),
    ],
)
def test_holds(when: Any, value: Any, holds: bool):
    condition = Condition.from_yaml({"p": when})
    assert condition.holds({"p": value}) is holds


def test_every_parent_must_hold_and_be_present():
    condition = Condition.from_yaml({"optimizer": "sgd", "momentum": {">": 0.5}})
    assert condition.parents == frozenset({"optimizer", "momentum"})
    assert condition.holds({"optimizer": "sgd", "momentum": 0.9})
    assert not condition.holds({"optimizer": "sgd", "momentum": 0.1})
    assert not condition.holds({"optimizer": "adam", "momentum": 0.9})
    # A parent that does not exist in the trial: the child does not either, whatever the test.
    assert not condition.holds({"optimizer": "sgd"})
    assert not Condition.from_yaml({"optimizer": {"!=": "sgd"}}).holds({})


def test_condition_and_param_pickle():
    param = parse_param(SPACE["nesterov"])
    again = pickle.loads(pickle.dumps(param))
    assert again == param
    assert again.when.holds({"optimizer": "sgd", "momentum": 0.9})
    assert hash(param.when) == hash(again.when)


def test_unconditional_parameters_have_no_when():
    assert parse_param({"uniform": [0, 1]}).when is None
    assert parse_param({"uniform": [0, 1], "when": None}).when is None  # --set ...when=null
    assert parse_param(3).when is None


# ------------------------------------------------------------------ order


def test_ordered_puts_every_parent_first():
    chain = _space(
        d={"choice": [1, 2], "when": {"c": 1}},
        x={"choice": [1, 2]},
        c={"choice": [1, 2], "when": {"b": 1}},
        b={"choice": [1, 2], "when": {"a": 1}},
        a={"choice": [1, 2]},
    )
    assert ordered(chain) == ["x", "a", "b", "c", "d"]


def test_ordered_keeps_spec_order_when_parents_come_first():
    space = {name: parse_param(raw) for name, raw in SPACE.items()}
    assert ordered(space) == list(SPACE)


def test_active_drops_what_does_not_exist():
    space = {name: parse_param(raw) for name, raw in SPACE.items()}
    values = {"optimizer": "adam", "momentum": 0.9, "layers": 3, "units_3": 16, "nesterov": True}
    assert active(space, values) == {"optimizer": "adam", "layers": 3, "units_3": 16}
    values["optimizer"] = "sgd"
    assert active(space, values) == values


# ------------------------------------------------------------------ spec errors

ERRORS = {
    "unknown parent": (
        {"momentum": {"uniform": [0.0, 0.95], "when": {"optimiser": "sgd"}}},
        "search.space.momentum.when: unknown parameter 'optimiser'; parameters: optimizer, "
        "layers, units_3, nesterov, lr, epochs",
    ),
    "value the choice never takes": (
        {"momentum": {"uniform": [0.0, 0.95], "when": {"optimizer": "rmsprop"}}},
        "search.space.momentum.when: impossible condition: optimizer == 'rmsprop' never "
        "holds; optimizer is {choice: [adam, sgd]}",
    ),
    "bound outside the randint": (
        {"units_3": {"choice": [16], "when": {"layers": {">=": 10}}}},
        "search.space.units_3.when: impossible condition: layers >= 10 never holds; layers is "
        "{randint: [1, 4]}",
    ),
    "bound outside the uniform": (
        {"x": {"choice": [1], "when": {"lr": {">": 5}}}},
        "search.space.x.when: impossible condition: lr > 5 never holds; lr is "
        "{loguniform: [0.001, 0.1]}",
    ),
    "none of a list": (
        {"x": {"choice": [1], "when": {"layers": [0, 5]}}},
        "search.space.x.when: impossible condition: layers in [0, 5] never holds; layers is "
        "{randint: [1, 4]}",
    ),
    "operators that exclude each other": (
        {"x": {"choice": [1], "when": {"layers": {">": 2, "<": 3}}}},
        "search.space.x.when: impossible condition: layers > 2 and layers < 3 never hold "
        "together; layers is {randint: [1, 4]}",
    ),
    "every value excluded": (
        {"x": {"choice": [1], "when": {"optimizer": {"not_in": ["adam", "sgd"]}}}},
        "search.space.x.when: impossible condition: optimizer not in ['adam', 'sgd'] never "
        "holds; optimizer is {choice: [adam, sgd]}",
    ),
    "a parent that exists only for another value": (
        {"x": {"choice": [1], "when": {"optimizer": "adam", "momentum": {">": 0.5}}}},
        "search.space.x.when: impossible condition: optimizer == 'adam' and optimizer == 'sgd' "
        "(for momentum to exist) never hold together; optimizer is {choice: [adam, sgd]}",
    ),
    "ordering on strings": (
        {"x": {"choice": [1], "when": {"optimizer": {">": 1}}}},
        "search.space.x.when: cannot compare optimizer > 1: '>' compares numbers, and 'adam' "
        "is not one; optimizer is {choice: [adam, sgd]}",
    ),
    "equality on a continuous float": (
        {"x": {"choice": [1], "when": {"momentum": 0.5}}},
        "search.space.x.when: cannot compare momentum == 0.5: a float drawn from a continuous "
        "range almost never equals a given value; compare it with <, <=, > or >=; momentum is "
        "{uniform: [0.0, 0.95]}",
    ),
    "constant parent that fails": (
        {"x": {"choice": [1], "when": {"epochs": {">": 5}}}},
        "search.space.x.when: impossible condition: epochs > 5 never holds; epochs is the "
        "constant 3",
    ),
    "cycle": (
        {"a": {"choice": [1, 2], "when": {"b": 1}}, "b": {"choice": [1, 2], "when": {"a": 1}}},
        "search.space.a.when: cycle a -> b -> a: each exists only when the next has a value",
    ),
    "parameter its own parent": (
        {"a": {"choice": [1, 2], "when": {"a": 1}}},
        "search.space.a.when: cycle a -> a: each exists only when the next has a value",
    ),
    "unknown operator": (
        {"x": {"choice": [1], "when": {"layers": {"=>": 3}}}},
        "search.space.x.when: unknown operator '=>' for layers; allowed: ==, !=, <, <=, >, >=, "
        "in, not_in",
    ),
    "ordering against a string": (
        {"x": {"choice": [1], "when": {"layers": {">": "3"}}}},
        "search.space.x.when: layers: '>' needs a number, got '3'",
    ),
    "in without a list": (
        {"x": {"choice": [1], "when": {"layers": {"in": 3}}}},
        "search.space.x.when: layers: 'in' needs a non-empty list of values, got 3",
    ),
    "when that is not a mapping": (
        {"x": {"choice": [1], "when": "sgd"}},
        "search.space.x.when: expected a mapping of parameter names to a value, a list or "
        "{operator: value}, e.g. {optimizer: sgd}; got 'sgd'",
    ),
    "conditional constant": (
        {"x": {"value": 3, "when": {"optimizer": "sgd"}}},
        "search.space.x.when: needs exactly one of uniform, loguniform, randint, choice beside "
        "it (a constant is in every trial and cannot have a condition), got value, when",
    ),
    "two distributions beside when": (
        {"x": {"choice": [1], "uniform": [0, 1], "when": {"optimizer": "sgd"}}},
        "search.space.x.when: needs exactly one of uniform, loguniform, randint, choice beside "
        "it (a constant is in every trial and cannot have a condition), got choice, uniform, "
        "when",
    ),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_bad_condition_is_one_line_naming_the_parameter(case: str):
    change, line = ERRORS[case]
    assert _problems({**SPACE, **change}) == [line]


def test_distribution_errors_are_unchanged():
    assert _problems({**SPACE, "x": {"choice": [1], "uniform": [0, 1]}}) == [
        "search.space.x: expected exactly one of uniform, loguniform, randint, choice or a "
        "constant value, got choice, uniform"
    ]
    assert _problems({**SPACE, "x": {"uniform": [1, 0], "when": {"optimizer": "sgd"}}}) == [
        "search.space.x: uniform [1, 0]: low (1.0) must be below high (0.0)"
    ]


def test_check_conditions_names_the_parameter():
    space = _space(a={"choice": [1, 2], "when": {"b": 1}})
    with pytest.raises(ConditionError) as info:
        check_conditions(space)
    assert info.value.param == "a"
    assert str(info.value) == "a.when: unknown parameter 'b'; parameters: "


@pytest.mark.parametrize(
    "when",
    [
        {"optimizer": "sgd"},
        {"layers": {">=": 2, "<=": 3, "!=": 2}},
        {"layers": {"not_in": [1, 2, 3]}},
        {"units_3": {">": 16}},  # units_3 exists only when layers >= 3: still possible
        {"epochs": {"<=": 3}},  # a constant that passes
        {"lr": {"<": 0.01, "!=": 0.005}},
        {"optimizer": {"!=": "adam"}, "momentum": {">=": 0.2}},
    ],
)
def test_possible_conditions_are_accepted(when: dict[str, Any]):
    spec = validate_spec(_raw({**SPACE, "x": {"choice": [1, 2], "when": when}}))
    assert spec.search.space["x"].when == Condition.from_yaml(when)


def test_bad_condition_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(_raw({**SPACE, "momentum": {"uniform": [0, 1], "when": {"optimiser": 1}}}))
    )
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "search.space.momentum.when: unknown parameter 'optimiser'" in lines[0]


# ------------------------------------------------------------------ initial points

POINT = {"optimizer": "sgd", "momentum": 0.9, "layers": 3, "units_3": 16, "nesterov": True}
POINT_ADAM = {"optimizer": "adam", "layers": 2, "lr": 0.01}


def test_initial_points_give_exactly_what_exists():
    points = [{**POINT, "lr": 0.01}, POINT_ADAM, {**POINT_ADAM, "layers": 4, "units_3": 64}]
    spec = validate_spec(_raw(SPACE, points))
    assert spec.search.initial_points == points


POINT_ERRORS = {
    "missing an active parameter": (
        {"optimizer": "sgd", "layers": 2, "lr": 0.01},
        "search.initial_points[0]: missing momentum (it exists when optimizer == 'sgd')",
    ),
    "missing a grandchild": (
        {"optimizer": "sgd", "momentum": 0.9, "layers": 2, "lr": 0.01},
        "search.initial_points[0]: missing nesterov (it exists when optimizer == 'sgd' and "
        "momentum > 0.5)",
    ),
    "an inactive parameter": (
        {**POINT_ADAM, "momentum": 0.5},
        "search.initial_points[0].momentum: does not exist in this point (it needs "
        "optimizer == 'sgd'); remove it",
    ),
    "a child of an inactive parameter": (
        {"optimizer": "sgd", "momentum": 0.3, "layers": 2, "lr": 0.01, "nesterov": True},
        "search.initial_points[0].nesterov: does not exist in this point (it needs "
        "optimizer == 'sgd' and momentum > 0.5); remove it",
    ),
    "an unconditional parameter missing": (
        {"optimizer": "adam", "lr": 0.01},
        "search.initial_points[0]: missing layers",
    ),
    "outside the space": (
        {**POINT_ADAM, "layers": 3, "units_3": 8},
        "search.initial_points[0].units_3: 8 is outside the space",
    ),
    "not searched": (
        {**POINT_ADAM, "epochs": 3},
        "search.initial_points[0]: epochs not searched; searched parameters: optimizer, "
        "momentum, layers, units_3, nesterov, lr",
    ),
}


@pytest.mark.parametrize("case", POINT_ERRORS, ids=list(POINT_ERRORS))
def test_bad_initial_point(case: str):
    point, line = POINT_ERRORS[case]
    assert _problems(SPACE, [point]) == [line]


def test_initial_point_under_a_constant_parent():
    space = {"epochs": 3, "x": {"choice": [1, 2]}, "y": {"choice": [1], "when": {"epochs": 3}}}
    validate_spec(_raw(space, [{"x": 1, "y": 1}]))
    assert _problems(space, [{"x": 1}]) == [
        "search.initial_points[0]: missing y (it exists when epochs == 3)"
    ]


# ------------------------------------------------------------------ YAML round trip


@pytest.mark.parametrize(
    "raw",
    [
        {"uniform": [0.0, 0.95], "when": {"optimizer": "sgd"}},
        {"choice": [16, 32], "when": {"layers": {">=": 3}}},
        {"choice": [16, 32], "when": {"layers": [3, 4]}},
        {"randint": [1, 3], "when": {"layers": {">": 1, "not_in": [3]}, "optimizer": "sgd"}},
        {"choice": [1], "when": {"hidden": {"==": [64, 32]}}},
        {"choice": [1], "when": {"flag": True, "name": None}},
    ],
)
def test_param_yaml_round_trip(raw: dict[str, Any]):
    assert parse_param(raw).to_yaml() == raw


def test_spec_round_trips_when(tmp_path):
    spec = validate_spec(_raw(SPACE, [POINT_ADAM]))
    dumped = spec.to_dict()["search"]["space"]
    assert dumped["nesterov"]["when"] == {"optimizer": "sgd", "momentum": {">": 0.5}}
    assert dumped["units_3"] == SPACE["units_3"]
    path = tmp_path / "spec.yaml"
    path.write_text(spec.to_yaml())
    again = load_spec(path)
    assert again.search.space == spec.search.space
    assert again.sha256 == spec.sha256
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_set_override_changes_or_drops_a_condition(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_raw(SPACE)))
    spec = load_spec(path, ["search.space.units_3.when.layers={'>=': 4}"])
    assert spec.search.space["units_3"].when == Condition.from_yaml({"layers": {">=": 4}})
    spec = load_spec(path, ["search.space.units_3.when=null"])
    assert spec.search.space["units_3"].when is None
