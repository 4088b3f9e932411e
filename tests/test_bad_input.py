"""Every user error is caught before any trial: one line naming the field, exit code 2.

Table-driven through the real CLI (``sweep validate``), which runs every pre-trial check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DEFAULT_SPEC
from typer.testing import CliRunner

from sweeps.cli import app
from trainable.data import load_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def abalone_frame():
    return load_dataset("builtin:abalone").frame


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
        ["trainable = 'train.py'", "MODULE:FUNCTION"],
    ),
    "unimportable trainable": (
        ["trainable=nosuch.module:fn"],
        ["trainable: cannot import 'nosuch.module'"],
    ),
    "trainable without the function": (
        ["trainable=trainable.train:nosuch"],
        ["trainable: module 'trainable.train' has no attribute 'nosuch'"],
    ),
    "malformed s3 uri": (["data.source=s3://"], ["data.source", "not a valid s3://bucket/key URI"]),
    "unknown builtin data": (["data.source=builtin:iris"], ["data.source", "builtin:abalone"]),
    "malformed ARN": (
        ["tracking.uri=arn:aws:sagemaker:us-east-1:123:mlflow-tracking-server"],
        ["tracking.uri", "is not a SageMaker MLflow ARN"],
    ),
    "unreachable tracking server": (
        ["tracking.uri=http://127.0.0.1:9"],
        ["tracking.uri: MLflow server http://127.0.0.1:9: connection refused"],
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
    _assert_user_error(_validate_data(str(workdir)), "is a folder; expected a CSV file")


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
