"""Several objectives (``search.metrics``): the model-cost metrics every Keras family reports,
the Pareto front on the parent run and in the views, and ``register.select``.

Two real sweeps (local Ray, TensorFlow, MLflow SQLite store) are checked through MLflow alone,
with their own dominance check; the front and the selection rule are also checked on
hand-made trial records.
"""

from __future__ import annotations

import csv
import io
import math

import pytest
from helpers import DEFAULT_SPEC, small_spec_overrides
from mlflow import MlflowClient
from rich.console import Console
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.config.spec import load_spec
from sweeps.registration.selection import TAG_NOT_REGISTERED, select_trial
from sweeps.results import ERROR, TrialRecord
from sweeps.running.sweep import run_sweep
from sweeps.search.pareto import dominates, pareto_front
from trainable.contract import Objective

runner = CliRunner()
TRIALS = 5
EPOCHS = 2
#: Below the 2-layer, 128-unit models (over 10000 parameters), above the 16-unit ones (< 500).
MAX_PARAMS = 5000
SPACE = (
    "{layers: {randint: [1, 3]}, units: {choice: [16, 128]}, "
    f"learning_rate: {{loguniform: [1.0e-3, 1.0e-2]}}, epochs: {EPOCHS}}}"
)
#: Two small and two large models first, so that the bound on params splits the trials.
POINTS = (
    "[{layers: 3, units: 128, learning_rate: 0.01}, {layers: 1, units: 16, learning_rate: 0.01},"
    " {layers: 2, units: 16, learning_rate: 0.003}, {layers: 2, units: 128, learning_rate: 0.003}]"
)
SELECT = f'{{best: val_rmse, where: {{params: {{"<": {MAX_PARAMS}}}}}}}'


@pytest.fixture(scope="module")
def sweep(ray_session, tmp_path_factory):
    """5 trials x 2 epochs minimising val_rmse and params, registering the best val_rmse
    among the trials under MAX_PARAMS parameters."""
    tmp = tmp_path_factory.mktemp("pareto")
    overrides = small_spec_overrides(
        tmp,
        **{
            "search.num_samples": TRIALS,
            "search.metrics": "{val_rmse: min, params: min}",
            "search.space": SPACE,
            "search.initial_points": POINTS,
            "register.select": SELECT,
        },
    )
    outcome = run_sweep(load_spec(DEFAULT_SPEC, overrides))
    return outcome, MlflowClient(outcome.tracking_uri)


def _children(outcome, client):
    runs = client.search_runs(
        [outcome.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'",
    )
    return {r.info.run_name: r for r in runs}


def _at_best_epoch(client, run, metric: str) -> float:
    """A child run's value of ``metric`` at its logged best epoch (read from its history)."""
    step = int(run.data.metrics["best_epoch"])
    (value,) = [
        m.value for m in client.get_metric_history(run.info.run_id, metric) if m.step == step
    ]
    return value


def _points(outcome, client) -> dict[str, tuple[float, float]]:
    """(val_rmse, params) at each finished child's best epoch, from MLflow alone."""
    return {
        name: (run.data.metrics["best_val_rmse"], _at_best_epoch(client, run, "params"))
        for name, run in _children(outcome, client).items()
        if run.info.status == "FINISHED"
    }


def _front(points: dict[str, tuple[float, float]]) -> set[str]:
    """Names whose point no other point beats on one coordinate without losing on the other."""
    return {
        a
        for a, (ra, pa) in points.items()
        if not any(
            rb <= ra and pb <= pa and (rb < ra or pb < pa)
            for b, (rb, pb) in points.items()
            if b != a
        )
    }


# ------------------------------------------------------------------ the sweep


def test_every_epoch_reports_the_models_parameter_count_and_latency(sweep):
    outcome, client = sweep
    children = _children(outcome, client)
    assert len(children) == TRIALS
    for run in children.values():
        params = client.get_metric_history(run.info.run_id, "params")
        latency = client.get_metric_history(run.info.run_id, "latency_ms")
        assert [m.step for m in params] == [m.step for m in latency] == [1, 2]
        assert len({m.value for m in params}) == 1  # measured once, reported every epoch
        assert params[0].value > 0 and float(params[0].value).is_integer()
        assert latency[0].value > 0 and math.isfinite(latency[0].value)
        assert run.data.params["layers"] in {"1", "2", "3"}


def test_parameter_count_grows_with_the_model(sweep):
    outcome, client = sweep
    children = _children(outcome, client)
    small = _at_best_epoch(client, children["trial-0002"], "params")  # 1 layer of 16
    large = _at_best_epoch(client, children["trial-0001"], "params")  # 3 layers of 128
    assert small < MAX_PARAMS < large


def test_pareto_csv_holds_exactly_the_non_dominated_trials(sweep, tmp_path):
    outcome, client = sweep
    path = client.download_artifacts(outcome.parent_run_id, "summary/pareto.csv", str(tmp_path))
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["trial", "run_id", "val_rmse", "params"]
    points = _points(outcome, client)
    assert {row["trial"] for row in rows} == _front(points)
    children = _children(outcome, client)
    for row in rows:
        assert row["run_id"] == children[row["trial"]].info.run_id
        rmse, params = points[row["trial"]]
        assert float(row["val_rmse"]) == pytest.approx(rmse)
        assert float(row["params"]) == params
    primary = [float(row["val_rmse"]) for row in rows]
    assert primary == sorted(primary)  # best val_rmse first


def test_results_csv_has_a_column_per_objective(sweep, tmp_path):
    outcome, client = sweep
    path = client.download_artifacts(outcome.parent_run_id, "summary/results.csv", str(tmp_path))
    with open(path) as handle:
        header = next(csv.reader(handle))
    assert header[:5] == ["trial", "run_id", "state", "val_rmse", "params"]


def test_summary_draws_the_pareto_front_and_the_primary_metrics_plots(sweep, tmp_path):
    outcome, client = sweep
    names = {a.path for a in client.list_artifacts(outcome.parent_run_id, "summary")}
    for plot in (
        "pareto_front",
        "optimization_history",
        "parallel_coordinates",
        "param_importances",
    ):
        assert f"summary/{plot}.png" in names
    folder = client.download_artifacts(outcome.parent_run_id, "summary", str(tmp_path))
    page = (tmp_path / "summary" / "summary.html").read_text()
    assert folder and "<h2>pareto front</h2>" in page and "<h2>optimization history</h2>" in page
    assert "val_rmse (min), params (min)" in page


def test_register_select_registers_the_best_val_rmse_under_the_bound(sweep):
    outcome, client = sweep
    points = _points(outcome, client)
    allowed = {name: rmse for name, (rmse, params) in points.items() if params < MAX_PARAMS}
    assert allowed and len(allowed) < len(points)  # the bound splits the trials
    expected = min(allowed, key=allowed.get)
    version = client.get_model_version(outcome.spec.model_name, outcome.registration.version)
    assert version.run_id == _children(outcome, client)[expected].info.run_id
    assert expected in _front(points)  # an upper bound on a minimised metric keeps the front
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(allowed[expected])
    assert parent.data.metrics["best_params"] == points[expected][1]


def test_end_of_run_output_has_one_line_per_front_member(sweep):
    from sweeps.views.outcome import print_outcome

    outcome, client = sweep
    out = io.StringIO()
    print_outcome(outcome, Console(file=out, width=300, no_color=True))
    lines = out.getvalue().splitlines()
    front = _front(_points(outcome, client))
    heading = next(i for i, line in enumerate(lines) if line.startswith("Pareto front of"))
    assert "val_rmse (min), params (min)" in lines[heading]
    members = lines[heading + 1 : heading + 1 + len(front)]
    assert {line.split()[0] for line in members} == front
    assert sum("<- registered" in line for line in members) == 1


def test_sweep_best_prints_the_pareto_front(sweep):
    outcome, client = sweep
    result = runner.invoke(app, ["best", outcome.run_name, "--tracking-uri", outcome.tracking_uri])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    heading = next(i for i, line in enumerate(lines) if "Pareto front of" in line)
    points = _points(outcome, client)
    front = _front(points)
    assert f"{len(front)} of {TRIALS} trials" in lines[heading]
    rows = [line for line in lines[heading:] if line.strip().startswith("│ trial-")]
    assert {row.split()[1] for row in rows} == front
    registered = [row for row in rows if "yes" in row]
    assert len(registered) == 1
    for row in rows:
        name = row.split()[1]
        assert f"{points[name][1]:.0f}" in row and f"{points[name][0]:.4f}" in row


@pytest.fixture(scope="module")
def unsatisfied(ray_session, tmp_path_factory):
    """One objective and a bound no trial meets: 1 trial x 1 epoch."""
    tmp = tmp_path_factory.mktemp("unsatisfied")
    overrides = small_spec_overrides(
        tmp,
        **{
            "search.num_samples": 1,
            "search.space.epochs": 1,
            "register.select": '{where: {val_rmse: {"<": 0}}}',
        },
    )
    outcome = run_sweep(load_spec(DEFAULT_SPEC, overrides))
    return outcome, MlflowClient(outcome.tracking_uri)


def test_a_bound_no_trial_meets_registers_nothing_and_says_why(unsatisfied):
    outcome, client = unsatisfied
    assert outcome.registration is None
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    note = "no complete trial has val_rmse < 0: nothing registered"
    assert parent.data.tags[TAG_NOT_REGISTERED] == note
    assert client.search_model_versions(f"tags.sweep_run_id = '{outcome.parent_run_id}'") == []
    assert "best_val_rmse" not in parent.data.metrics
    out = io.StringIO()
    from sweeps.views.outcome import print_outcome

    print_outcome(outcome, Console(file=out, width=300, no_color=True))
    assert note in out.getvalue()


# ------------------------------------------------------------------ the spec

runner_cases = {
    "one objective in metrics": (
        "search.metrics={val_rmse: min}",
        "search: metrics needs at least two objectives",
    ),
    "unreported metric in metrics": (
        "search.metrics={val_rmse: min, val_auc: max}",
        "search.metrics: 'val_auc' is not reported by trainable.families.abalone:family",
    ),
    "bad mode in metrics": (
        "search.metrics={val_rmse: min, params: smallest}",
        "search.metrics.params = 'smallest': must be 'min' or 'max'",
    ),
    "select best not a search metric": (
        "register.select={best: val_mae}",
        "register.select.best: 'val_mae' is not a search metric; allowed: val_rmse, params",
    ),
    "select where not a search metric": (
        'register.select={where: {latency_ms: {"<": 1}}}',
        "register.select.where: 'latency_ms' is not a search metric",
    ),
    "unknown comparison": (
        'register.select={where: {params: {"=<": 1}}}',
        "register.select.where.params: unknown comparison '=<'; allowed: <, <=, >, >=, ==, !=",
    ),
    "no comparison": (
        "register.select={where: {params: {}}}",
        "register.select.where.params: give a comparison",
    ),
    "bound not a number": (
        'register.select={where: {params: {"<": many}}}',
        "register.select.where.params.<",
    ),
    "unknown select field": (
        "register.select={worst: params}",
        "register.select.worst: unknown field; allowed here: best, where",
    ),
}


@pytest.mark.parametrize("case", runner_cases, ids=list(runner_cases))
def test_bad_objectives_or_selection_is_one_line_and_exit_code_2(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    override, expected = runner_cases[case]
    args = ["validate", str(DEFAULT_SPEC), "--set", override]
    if not override.startswith("search.metrics"):
        args += ["--set", "search.metrics={val_rmse: min, params: min}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.output


def test_params_and_latency_are_accepted_as_objectives(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(
        app,
        [
            "validate",
            str(DEFAULT_SPEC),
            "--set",
            "search.metrics={val_rmse: min, params: min, latency_ms: min}",
            "--set",
            'register.select={best: latency_ms, where: {params: {"<=": 20000}}}',
        ],
    )
    assert result.exit_code == 0, result.output


def test_a_keras_familys_metrics_add_the_models_cost_to_what_it_declares():
    from trainable.families.abalone import family
    from trainable.keras_family import KerasFamily

    class Declared(KerasFamily):
        metrics = ("val_auc", "val_loss")

        def build(self, config, schema, train):  # never called here
            raise NotImplementedError

    class Undeclared(Declared):
        metrics = ()

    assert family.metrics == ("val_rmse", "val_mae", "val_loss", "params", "latency_ms")
    assert family.test_metrics == ("test_rmse", "test_mae", "test_loss")
    assert Declared().metrics == ("val_auc", "val_loss", "params", "latency_ms")
    assert Undeclared().metrics == ()  # nothing declared: the search metric is unchecked


# ------------------------------------------------------------------ the front and the rule

RMSE, PARAMS, AUC = Objective("val_rmse"), Objective("params"), Objective("val_auc", "max")


def _trial(number: int, status: str = "TERMINATED", **values: float) -> TrialRecord:
    primary = next(iter(values.values()), None)
    return TrialRecord(number, f"t{number}", status, best_value=primary, values=dict(values))


def _numbers(trials) -> list[int]:
    return [t.number for t in trials]


def test_front_keeps_the_trials_no_other_beats_best_primary_first():
    trials = [
        _trial(1, val_rmse=2.0, params=900),
        _trial(2, val_rmse=2.5, params=100),
        _trial(3, val_rmse=2.6, params=900),  # dominated by 1 and 2
        _trial(4, val_rmse=1.5, params=5000),
        _trial(5, val_rmse=2.5, params=200),  # dominated by 2 (same rmse, more params)
    ]
    assert _numbers(pareto_front(trials, [RMSE, PARAMS])) == [4, 1, 2]


def test_trials_with_equal_values_are_both_on_the_front():
    trials = [_trial(1, val_rmse=2.0, params=100), _trial(2, val_rmse=2.0, params=100)]
    assert _numbers(pareto_front(trials, [RMSE, PARAMS])) == [1, 2]
    assert not dominates((2.0, 100), (2.0, 100), [RMSE, PARAMS])


def test_a_maximised_objective_counts_higher_as_better():
    trials = [
        _trial(1, val_auc=0.90, params=100),
        _trial(2, val_auc=0.95, params=100),  # dominates 1
        _trial(3, val_auc=0.97, params=800),
    ]
    assert _numbers(pareto_front(trials, [AUC, PARAMS])) == [3, 2]
    assert dominates((0.95, 100), (0.90, 100), [AUC, PARAMS])


def test_one_objective_leaves_the_best_trials_only():
    trials = [_trial(1, val_rmse=2.0), _trial(2, val_rmse=1.0), _trial(3, val_rmse=1.0)]
    assert _numbers(pareto_front(trials, [RMSE])) == [2, 3]


def test_failed_trials_and_missing_values_stay_off_the_front():
    trials = [
        _trial(1, ERROR, val_rmse=0.1, params=1),
        _trial(2, val_rmse=0.2),  # no params
        _trial(3, val_rmse=float("nan"), params=1),
        _trial(4, val_rmse=3.0, params=300),
    ]
    assert _numbers(pareto_front(trials, [RMSE, PARAMS])) == [4]


def _spec(select: str | None = None, metrics: str = "{val_rmse: min, params: min}"):
    overrides = [f"search.metrics={metrics}"] + ([f"register.select={select}"] if select else [])
    return load_spec(DEFAULT_SPEC, overrides)


def test_select_picks_the_best_under_the_bound_and_breaks_ties_by_the_other_objectives():
    trials = [
        _trial(1, val_rmse=1.0, params=9000),
        _trial(2, val_rmse=2.0, params=800),
        _trial(3, val_rmse=2.0, params=700),  # ties 2 on val_rmse, fewer params
        _trial(4, val_rmse=3.0, params=100),
    ]
    picked = select_trial(trials, _spec('{best: val_rmse, where: {params: {"<": 1000}}}'))
    assert picked.trial.number == 3
    assert picked.rule == "best val_rmse (min) where params < 1000"
    assert select_trial(trials, _spec()).trial.number == 1  # default: the primary metric
    assert select_trial(trials, _spec("{best: params}")).trial.number == 4


def test_select_with_no_trial_under_the_bound_picks_none_and_says_why():
    trials = [_trial(1, val_rmse=1.0, params=9000)]
    picked = select_trial(trials, _spec('{where: {params: {"<": 10, ">=": 1}}}'))
    assert picked.trial is None
    assert picked.note == "no complete trial has params < 10 and params >= 1: nothing registered"
