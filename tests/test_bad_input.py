"""Every user error is caught before any trial: one line naming the field, exit code 2.

Table-driven through the real CLI (``sweep validate``), which runs every pre-trial check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DEFAULT_SPEC
from typer.testing import CliRunner

from sweeps.cli import app
from trainable.families.abalone import SCHEMA
from trainable.tables import load_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def abalone_frame():
    return load_dataset("builtin:abalone", SCHEMA).frame


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _validate(*args: str):
    return runner.invoke(app, ["validate", *args])


def _assert_user_error(result, *needles: str) -> None:
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert "s3cret" not in output  # a password given by mistake is not echoed
    for needle in needles:
        assert needle in output, output


SPEC_CASES = {
    "unknown top-level field": (["foo=1"], ["foo: unknown field", "allowed here: name"]),
    "unknown nested field": (["search.bogus=1"], ["search.bogus: unknown field"]),
    "wrong type": (["search.num_samples=many"], ["search.num_samples = 'many'", "integer"]),
    "num_samples zero": (["search.num_samples=0"], ["search.num_samples = 0", "greater than 0"]),
    "max_concurrent negative": (["search.max_concurrent=-1"], ["search.max_concurrent = -1"]),
    "empty space": (["search.space={}"], ["search.space: is empty"]),
    "only constants": (["search.space={epochs: 3}"], ["search.space: has only constants"]),
    "uniform low above high": (
        ["search.space.dropout={uniform: [0.5, 0.1]}"],
        ["search.space.dropout", "low (0.5) must be below high (0.1)"],
    ),
    "loguniform non-positive": (
        ["search.space.learning_rate={loguniform: [0, 0.1]}"],
        ["search.space.learning_rate", "must be positive"],
    ),
    "randint low above high": (
        ["search.space.layers={randint: [4, 1]}"],
        ["search.space.layers", "must not exceed high"],
    ),
    "empty choice": (["search.space.units={choice: []}"], ["search.space.units", "non-empty"]),
    "unknown distribution": (
        ["search.space.units={normal: [1, 2]}"],
        ["search.space.units", "uniform, loguniform, randint, choice"],
    ),
    "unknown scheduler": (["search.scheduler.type=pbt"], ["search.scheduler.type = 'pbt'", "asha"]),
    "grace above max_t": (
        ["search.scheduler={type: asha, max_t: 5, grace_period: 10}"],
        ["search.scheduler", "grace_period (10) must not exceed max_t (5)"],
    ),
    "bad mode": (["search.mode=maximize"], ["search.mode = 'maximize'", "'min' or 'max'"]),
    "split too large": (["data.split.val=0.7"], ["data.split.val = 0.7"]),
    "negative gpu": (["resources.gpu=-1"], ["resources.gpu = -1"]),
    "initial point outside space": (
        ["search.space.units={choice: [8, 16]}"],
        ["initial_points[0].units: 64 is outside the space"],
    ),
    "malformed trainable path": (
        ["trainable=train.py"],
        ["trainable = 'train.py'", "MODULE:ATTR"],
    ),
    "unimportable trainable": (
        ["trainable=nosuch.module:fn"],
        ["trainable: cannot import 'nosuch.module'"],
    ),
    "trainable without the attribute": (
        ["trainable=trainable.families.abalone:nosuch"],
        ["trainable: module 'trainable.families.abalone' has no attribute 'nosuch'"],
    ),
    "trainable that is not a model family": (
        ["trainable=trainable.tables:load_dataset"],
        ["trainable: trainable.tables:load_dataset is a function, not a model family"],
    ),
    "search metric the family does not report": (
        ["search.metric=val_auc"],
        ["search.metric: 'val_auc' is not reported by", "val_rmse, val_mae, val_loss"],
    ),
    "register metric the family does not evaluate": (
        ["register.metric=test_auc"],
        ["register.metric: 'test_auc' is not evaluated by", "test_mae"],
    ),
    "register metric not a test metric": (
        ["register.metric=val_mae"],
        ["register.metric = 'val_mae'", "expected test_NAME"],
    ),
    "feature of an unknown kind": (
        ["data.features={length: text}"],
        ["data.features.length: expected numeric, categorical or {categorical: [values]}"],
    ),
    "malformed s3 uri": (["data.source=s3://"], ["data.source", "not a valid s3://bucket/key URI"]),
    "unknown builtin data": (
        ["data.source=builtin:iris"],
        ["data.source", "unknown built-in table 'builtin:iris'", "builtin:abalone"],
    ),
    "malformed ARN": (
        ["tracking.uri=arn:aws:sagemaker:us-east-1:123:mlflow-tracking-server"],
        ["tracking.uri", "is not a SageMaker MLflow ARN"],
    ),
    "unreachable tracking server": (
        ["tracking.uri=http://127.0.0.1:9"],
        ["tracking.uri: MLflow server http://127.0.0.1:9: connection refused"],
    ),
    "password in the tracking URI": (
        ["tracking.uri=http://alice:s3cret@127.0.0.1:5000"],
        ["tracking.uri", "contains credentials", "MLFLOW_TRACKING_PASSWORD"],
    ),
    "token in the storage URI": (
        ["storage=s3://AKIAXXXX@bucket/runs"],
        ["storage", "contains credentials"],
    ),
    "password in the data URL": (
        ["data.source=https://alice:s3cret@example.com/t.csv"],
        ["data.source", "contains credentials"],
    ),
    "unwritable storage": (["storage=/proc/sweeps"], ["storage: cannot write to /proc/sweeps"]),
    "bad alias": (["register.alias=1st place"], ["register.alias = '1st place'"]),
    "override without value": (["search.num_samples"], ["expected KEY.PATH=VALUE"]),
    "override through a value": (["name.first=x"], ["name is 'abalone', not a section"]),
}


@pytest.mark.parametrize("case", SPEC_CASES, ids=list(SPEC_CASES))
def test_bad_spec_is_reported_with_the_field(case, workdir):
    overrides, needles = SPEC_CASES[case]
    args = [str(DEFAULT_SPEC)]
    for override in overrides:
        args += ["--set", override]
    _assert_user_error(_validate(*args), *needles)


def test_yaml_syntax_error_names_the_line(workdir):
    spec = workdir / "broken.yaml"
    spec.write_text("name: x\nsearch:\n  space: {layers: [1, 2\n")
    _assert_user_error(_validate(str(spec)), "is not valid YAML at line")


def test_missing_spec_file(workdir):
    _assert_user_error(_validate(str(workdir / "nope.yaml")), "spec: file not found")


def test_spec_that_is_not_a_mapping(workdir):
    spec = workdir / "list.yaml"
    spec.write_text("- a\n- b\n")
    _assert_user_error(_validate(str(spec)), "must be a YAML mapping")


def test_several_problems_are_reported_together(workdir):
    result = _validate(str(DEFAULT_SPEC), "--set", "search.num_samples=0", "--set", "foo=1")
    _assert_user_error(result, "search.num_samples", "foo: unknown field")


# ------------------------------------------------------------------ data


def _csv(workdir: Path, frame) -> str:
    path = workdir / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _validate_data(source: str, *extra: str):
    return _validate(str(DEFAULT_SPEC), "--set", f"data.source={source}", *extra)


def test_missing_data_file(workdir):
    _assert_user_error(_validate_data(str(workdir / "none.csv")), "data.source: file not found")


def test_empty_data_file(workdir):
    (workdir / "empty.csv").write_text("")
    _assert_user_error(_validate_data(str(workdir / "empty.csv")), "is empty")


def test_data_folder_instead_of_file(workdir):
    _assert_user_error(_validate_data(str(workdir)), "is a folder; expected a CSV or Parquet file")


def test_non_csv_data_file(workdir):
    path = workdir / "model.bin"
    path.write_bytes(bytes(range(256)) * 4)
    _assert_user_error(_validate_data(str(path)), "data")


def test_missing_column(workdir, abalone_frame):
    source = _csv(workdir, abalone_frame.drop(columns=["shell_weight"]))
    _assert_user_error(_validate_data(source), "lacks column(s) shell_weight")


def test_missing_target_column(workdir, abalone_frame):
    source = _csv(workdir, abalone_frame)
    _assert_user_error(_validate_data(source, "--set", "data.target=age"), "lacks column(s) age")


def test_missing_value(workdir, abalone_frame):
    frame = abalone_frame.copy()
    frame.loc[41, "length"] = None
    _assert_user_error(
        _validate_data(_csv(workdir, frame)), "column 'length' has 1 missing value(s)", "row 42"
    )


def test_non_numeric_value(workdir, abalone_frame):
    frame = abalone_frame.astype({"diameter": object})
    frame.loc[9, "diameter"] = "abc"
    _assert_user_error(
        _validate_data(_csv(workdir, frame)),
        "column 'diameter' has non-numeric value 'abc'",
        "row 10",
    )


def test_unknown_sex_code(workdir, abalone_frame):
    frame = abalone_frame.copy()
    frame.loc[2, "sex"] = "X"
    _assert_user_error(
        _validate_data(_csv(workdir, frame)),
        "column 'sex' has unknown code 'X'",
        "row 3",
        "F, I, M",
    )


def test_too_few_rows(workdir, abalone_frame):
    source = _csv(workdir, abalone_frame.head(50))
    _assert_user_error(_validate_data(source), "has 50 rows; at least 100 are needed")


def test_valid_csv_passes_validation(workdir, abalone_frame):
    result = _validate_data(_csv(workdir, abalone_frame.head(500)))
    assert result.exit_code == 0, result.output
    assert "500 rows" in result.output


def test_valid_parquet_passes_validation(workdir, abalone_frame):
    path = workdir / "data.parquet"
    abalone_frame.head(300).to_parquet(path)
    result = _validate_data(str(path))
    assert result.exit_code == 0, result.output
    assert "300 rows" in result.output


def test_unreadable_parquet_file(workdir):
    path = workdir / "data.parquet"
    path.write_text("not parquet at all\n")
    _assert_user_error(_validate_data(str(path)), "is not a readable Parquet file")


# ------------------------------------------------------------------ schemas declared in the spec


def _table(workdir: Path, rows: int = 120, changes: dict | None = None) -> str:
    """A small table of a team's own: two numeric columns, a categorical one, a class target."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, rows),
            "spend": rng.normal(50, 10, rows).round(2),
            "plan": rng.choice(["basic", "pro"], rows),
            "churned": rng.choice(["no", "yes"], rows),
        }
    )
    for (column, row), value in (changes or {}).items():
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
    path = workdir / "own.csv"
    frame.to_csv(path, index=False)
    return str(path)


OWN_SCHEMA = [
    "trainable=trainable.families.mlp:classification",
    "data.target=churned",
    "data.features={tenure: numeric, spend: numeric, plan: {categorical: [basic, pro]}}",
    "search.metric=val_auc",
    "search.mode=max",
    "search.initial_points=[]",
]

SCHEMA_CASES = {
    "declared column missing from the table": (
        {},
        ["data.features={tenure: numeric, region: categorical}"],
        ["lacks column(s) region", "required: tenure, region, churned"],
    ),
    "text in a numeric column": (
        {("spend", 6): "lots"},
        [],
        ["column 'spend' has non-numeric value 'lots' at row 7; expected a number"],
    ),
    "unknown category": (
        {("plan", 11): "gold"},
        [],
        ["column 'plan' has unknown code 'gold' at row 12; allowed: basic, pro"],
    ),
    "target declared as a feature": (
        {},
        ["data.features={tenure: numeric, churned: categorical}"],
        ["data.features: 'churned' is the target"],
    ),
    "target missing": (
        {},
        ["data.target=label"],
        ["lacks column(s) label"],
    ),
    "missing target value": (
        {("churned", 3): None},
        [],
        ["column 'churned' has 1 missing value(s), first at row 4"],
    ),
    "a single class": (
        {**{("churned", i): "no" for i in range(120)}},
        [],
        ["target 'churned' has a single class ('no'); need at least 2"],
    ),
    "too few rows": (
        {"rows": 40},
        [],
        ["has 40 rows; at least 100 are needed"],
    ),
}


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=list(SCHEMA_CASES))
def test_declared_schema_problems_are_reported_with_column_and_row(case, workdir):
    changes, overrides, needles = SCHEMA_CASES[case]
    changes = dict(changes)
    rows = changes.pop("rows", 120)
    args = [f"data.source={_table(workdir, rows, changes)}", *OWN_SCHEMA, *overrides]
    _assert_user_error(
        _validate(str(DEFAULT_SPEC), *[x for a in args for x in ("--set", a)]), *needles
    )


def test_a_table_of_ones_own_passes_with_a_declared_schema(workdir):
    args = [f"data.source={_table(workdir)}", *OWN_SCHEMA]
    result = _validate(str(DEFAULT_SPEC), *[x for a in args for x in ("--set", a)])
    assert result.exit_code == 0, result.output
    assert "classification: churned (classes: no, yes)" in result.output
    assert "plan (categorical: basic/pro)" in result.output


def test_undeclared_features_are_the_tables_other_columns(workdir):
    args = [f"data.source={_table(workdir)}", *OWN_SCHEMA, "data.features=null"]
    result = _validate(str(DEFAULT_SPEC), *[x for a in args for x in ("--set", a)])
    assert result.exit_code == 0, result.output
    assert "tenure (numeric), spend (numeric), plan (categorical: basic/pro)" in result.output


@pytest.mark.parametrize("name", ["abalone", "breast_cancer", "wine", "diabetes"])
def test_every_builtin_table_loads_with_its_columns_typed(name):
    from trainable.contract import Schema
    from trainable.tables import BUILTIN_TABLES

    frame = BUILTIN_TABLES[name].loader()
    target = frame.columns[-1]
    task = "regression" if name in ("abalone", "diabetes") else "classification"
    dataset = load_dataset(f"builtin:{name}", Schema((), target, task))
    assert len(dataset.frame) >= 100
    assert target not in dataset.schema.feature_names
    assert len(dataset.schema.classes) >= (2 if task == "classification" else 0)


def test_a_shipped_spec_is_found_by_name(workdir):
    result = _validate("breast_cancer")
    assert result.exit_code == 0, result.output
    assert "classification: diagnosis (classes: benign, malignant)" in result.output


def test_password_in_the_tracking_uri_environment_variable(workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:s3cret@127.0.0.1:5000")
    result = _validate(str(DEFAULT_SPEC))
    _assert_user_error(result, "MLFLOW_TRACKING_URI contains credentials")


def test_urls_in_error_text_lose_their_credentials():
    from sweeps.record.client import scrub_urls

    text = "API request to https://alice:s3cret@mlflow.example.com/api failed; s3://bucket/key"
    assert scrub_urls(text) == (
        "API request to https://***@mlflow.example.com/api failed; s3://bucket/key"
    )
