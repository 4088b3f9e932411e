"""Tables for model families: read a source, check it against a schema, split it, fingerprint it.

Sources: ``builtin:NAME`` (a table shipped by an installed package, see :data:`BUILTIN_TABLES`),
a CSV or Parquet file, or an ``s3://bucket/key`` object of either kind (by extension: ``.parquet``
or ``.pq`` is Parquet, anything else CSV). Pure pandas/numpy (no TensorFlow), so the driver
checks data before any trial starts; every problem is one line naming the column and a row.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainable.aws import describe_aws_error, split_s3_uri
from trainable.contract import CATEGORICAL, Column, Schema

BUILTIN_PREFIX = "builtin:"
PARQUET_SUFFIXES = (".parquet", ".pq")
MIN_ROWS = 100
MIN_CLASS_ROWS = 2


class DataError(ValueError):
    """The data cannot be read or does not match the schema; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# ------------------------------------------------------------------ built-in tables


@dataclass(frozen=True)
class BuiltinTable:
    """A table shipped offline by an installed package."""

    loader: Callable[[], pd.DataFrame]
    origin: str  # where the package's copy comes from (recorded as the MLflow dataset source)
    package: str  # the PyPI package that ships it


def _load_abalone() -> pd.DataFrame:
    """scikit-lego's copy, read as its ``load_abalone(as_frame=True)`` reads it, without
    importing ``sklego.datasets`` (which imports scikit-learn: over a second of
    ``sweep validate``)."""
    return pd.read_csv(importlib.resources.files("sklego") / "data" / "abalone.zip")


def _sklearn_table(function: str, target: str, labels: bool) -> Callable[[], pd.DataFrame]:
    """A scikit-learn bundled data set as one frame: snake_case feature names, the target
    column named ``target`` and, with ``labels``, holding class names instead of codes."""

    def load() -> pd.DataFrame:
        bunch = getattr(importlib.import_module("sklearn.datasets"), function)(as_frame=True)
        frame = bunch.frame.rename(columns=lambda c: str(c).strip().replace(" ", "_"))
        codes = frame.pop("target")
        frame[target] = [bunch.target_names[int(c)] for c in codes] if labels else codes
        return frame

    return load


BUILTIN_TABLES: dict[str, BuiltinTable] = {
    "abalone": BuiltinTable(
        _load_abalone, "https://archive.ics.uci.edu/dataset/1/abalone", "scikit-lego"
    ),
    "breast_cancer": BuiltinTable(
        _sklearn_table("load_breast_cancer", "diagnosis", labels=True),
        "https://archive.ics.uci.edu/dataset/17/breast+cancer+wisconsin+diagnostic",
        "scikit-learn",
    ),
    "wine": BuiltinTable(
        _sklearn_table("load_wine", "cultivar", labels=True),
        "https://archive.ics.uci.edu/dataset/109/wine",
        "scikit-learn",
    ),
    "diabetes": BuiltinTable(
        _sklearn_table("load_diabetes", "progression", labels=False),
        "https://www4.stat.ncsu.edu/~boos/var.select/diabetes.html",
        "scikit-learn",
    ),
}


def builtin_names() -> list[str]:
    """The ``builtin:NAME`` sources there are."""
    return [BUILTIN_PREFIX + name for name in BUILTIN_TABLES]


def source_origin(source: str) -> str:
    """Where a source's rows come from, for the MLflow dataset record."""
    table = BUILTIN_TABLES.get(source.removeprefix(BUILTIN_PREFIX))
    if source.startswith(BUILTIN_PREFIX) and table:
        return table.origin
    return source if "://" in source else str(Path(source).expanduser().resolve())


# ------------------------------------------------------------------ datasets and splits


@dataclass(frozen=True)
class Dataset:
    """A checked table (features and target only) with its schema, source and fingerprint."""

    frame: pd.DataFrame
    source: str
    schema: Schema
    sha256: str

    @property
    def target(self) -> str:
        return self.schema.target


@dataclass(frozen=True)
class Splits:
    """Train/validation/test frames (features and target columns) and their schema."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    schema: Schema

    @property
    def target(self) -> str:
        return self.schema.target

    def without_test(self) -> Splits:
        """The same splits with an empty test frame: what trials need (less to ship)."""
        return Splits(self.train, self.val, self.test.iloc[0:0], self.schema)


def load_dataset(source: str, schema: Schema) -> Dataset:
    """Read ``source`` and check it against ``schema`` (see :func:`check_table`).

    Feature columns not declared (``schema.features`` empty) are every other column of the
    table, numeric or categorical by their values; categorical values and class labels not
    declared are those the table holds.

    Raises:
        DataError: the source cannot be read or the table does not fit the schema.
    """
    raw, frame = read_table(source)
    if not schema.features:
        schema = schema.with_(features=infer_features(frame, schema.target))
    check_table(frame, schema, source)
    frame = conform(frame, schema)
    schema = resolve(frame, schema)
    return Dataset(
        frame=frame, source=source, schema=schema, sha256=hashlib.sha256(raw).hexdigest()
    )


def split_dataset(dataset: Dataset, val: float, test: float, seed: int) -> Splits:
    """Deterministic seeded shuffle split into train/val/test (fractions of all rows)."""
    n = len(dataset.frame)
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test))
    n_val = max(1, round(n * val))
    frame = dataset.frame.reset_index(drop=True)
    test_rows, val_rows, train_rows = np.split(order, [n_test, n_test + n_val])
    return Splits(
        train=frame.iloc[np.sort(train_rows)].reset_index(drop=True),
        val=frame.iloc[np.sort(val_rows)].reset_index(drop=True),
        test=frame.iloc[np.sort(test_rows)].reset_index(drop=True),
        schema=dataset.schema,
    )


# ------------------------------------------------------------------ reading


def read_table(source: str) -> tuple[bytes, pd.DataFrame]:
    """The source's bytes (for the fingerprint) and its rows, column names stripped."""
    if source.startswith(BUILTIN_PREFIX):
        frame = _read_builtin(source)
        raw = frame.to_csv(index=False).encode()
    else:
        raw = _read_s3(source) if source.startswith("s3://") else _read_file(source)
        frame = _parse(raw, source)
    frame.columns = [str(c).strip() for c in frame.columns]
    return raw, frame


def _read_builtin(source: str) -> pd.DataFrame:
    name = source.removeprefix(BUILTIN_PREFIX)
    table = BUILTIN_TABLES.get(name)
    if table is None:
        allowed = ", ".join(builtin_names())
        raise DataError([f"data.source: unknown built-in table {source!r}; allowed: {allowed}"])
    try:
        return table.loader()
    except ImportError:
        needs = f"needs the package {table.package} (pip install {table.package})"
        raise DataError([f"data.source: {source} {needs}"]) from None


def _read_file(source: str) -> bytes:
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError([f"data.source: file not found: {path.resolve()}"])
    if path.is_dir():
        raise DataError(
            [f"data.source: {path.resolve()} is a folder; expected a CSV or Parquet file"]
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError([f"data.source: cannot read {path.resolve()}: {exc.strerror}"]) from None
    if not raw.strip():
        raise DataError([f"data.source: {path.resolve()} is empty; expected a table with a header"])
    return raw


def _read_s3(uri: str) -> bytes:
    import boto3
    import botocore.exceptions

    bucket, key = split_s3_uri(uri)
    if not bucket or not key:
        raise DataError([f"data.source: {uri!r} is not an s3://bucket/key URI"])
    try:
        body = (
            boto3.session.Session().client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise DataError([f"data.source: cannot read {uri}: {describe_aws_error(exc)}"]) from None
    if not body.strip():
        raise DataError([f"data.source: {uri} is empty; expected a table with a header"])
    return body


def is_parquet(source: str) -> bool:
    return source.lower().endswith(PARQUET_SUFFIXES)


def _parse(raw: bytes, source: str) -> pd.DataFrame:
    if is_parquet(source):
        try:
            return pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise DataError(
                [f"data.source: {source} is not a readable Parquet file ({_first_line(exc)})"]
            ) from None
    try:
        return pd.read_csv(io.BytesIO(raw), skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            [f"data.source: {source} is not a readable CSV file ({_first_line(exc)})"]
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError([f"data.source: {source} has no header row"]) from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# ------------------------------------------------------------------ schema checks


def infer_features(frame: pd.DataFrame, target: str) -> tuple[Column, ...]:
    """Every column but the target: numeric if all its values are numbers, else categorical."""
    columns = []
    for name in frame.columns:
        if name == target:
            continue
        values = frame[name].dropna()
        numeric = (
            not pd.api.types.is_bool_dtype(values)
            and pd.to_numeric(values, errors="coerce").notna().all()
        )
        columns.append(Column(str(name)) if numeric else Column(str(name), CATEGORICAL))
    return tuple(columns)


def check_table(frame: pd.DataFrame, schema: Schema, source: str = "data") -> None:
    """Columns present, no missing values, numbers where numbers belong, known categories and
    classes, enough rows.

    Raises:
        DataError: one line per problem, naming the column and the first bad row (1-based data
        rows; the header is row 0).
    """
    expected = [*schema.feature_names, schema.target]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:12])) or "none"
        more = ", ..." if len(frame.columns) > 12 else ""
        raise DataError(
            [
                f"data: {source} lacks column(s) {', '.join(missing)} (found: {found}{more}); "
                f"required: {', '.join(expected)}"
            ]
        )
    problems: list[str] = []
    for col in expected:
        values = frame[col]
        blank = values.isna() | values.astype(str).str.strip().eq("")
        if blank.any():
            problems.append(
                f"data: column {col!r} has {int(blank.sum())} missing value(s), "
                f"first at row {_row_number(blank)}"
            )
            continue
        column = schema.column(col)
        if column is not None and column.categorical:
            problems += _check_codes(col, values.astype(str).str.strip(), column.values)
        elif column is not None or schema.task == "regression":
            problems += _check_numbers(col, values)
        else:
            problems += _check_classes(col, values.astype(str).str.strip(), schema.classes)
    if len(frame) < MIN_ROWS:
        problems.append(f"data: {source} has {len(frame)} rows; at least {MIN_ROWS} are needed")
    if problems:
        raise DataError(problems)


def _check_codes(col: str, values: pd.Series, allowed: tuple[str, ...]) -> list[str]:
    if not allowed:
        return []
    bad = ~values.isin(allowed)
    if not bad.any():
        return []
    return [
        f"data: column {col!r} has unknown code {values[bad].iloc[0]!r} at row "
        f"{_row_number(bad)}; allowed: {', '.join(allowed)}"
    ]


def _check_numbers(col: str, values: pd.Series) -> list[str]:
    if pd.api.types.is_bool_dtype(values):
        return [f"data: column {col!r} holds true/false values; expected a number"]
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.astype(float))
    if not bad.any():
        return []
    return [
        f"data: column {col!r} has non-numeric value {values[bad].iloc[0]!r} at row "
        f"{_row_number(bad)}; expected a number"
    ]


def _check_classes(col: str, labels: pd.Series, classes: tuple) -> list[str]:
    if classes:
        allowed = [str(c) for c in classes]
        bad = ~labels.isin(allowed)
        if bad.any():
            return [
                f"data: target {col!r} has unknown class {labels[bad].iloc[0]!r} at row "
                f"{_row_number(bad)}; allowed: {', '.join(allowed)}"
            ]
    counts = labels.value_counts()
    if len(counts) < 2:
        return [f"data: target {col!r} has a single class ({counts.index[0]!r}); need at least 2"]
    rare = counts[counts < MIN_CLASS_ROWS]
    if len(rare):
        return [
            f"data: target {col!r} has class {rare.index[0]!r} in {int(rare.iloc[0])} row(s); "
            f"each class needs at least {MIN_CLASS_ROWS}"
        ]
    return []


def _row_number(mask: pd.Series) -> int:
    """1-based data row number (the header is row 0) of the first True in ``mask``."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def conform(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Only the schema's columns, in its order: numbers as numbers (integer columns stay
    integers, so the registered model's signature keeps the table's types), a regression target
    as float64, categories and class labels as stripped strings."""
    out = frame[[*schema.feature_names, schema.target]].copy()
    for column in schema.features:
        if column.categorical:
            out[column.name] = out[column.name].astype(str).str.strip().astype(object)
        else:
            out[column.name] = pd.to_numeric(out[column.name])
    if schema.task == "classification":
        out[schema.target] = out[schema.target].astype(str).str.strip().astype(object)
    else:
        out[schema.target] = pd.to_numeric(out[schema.target]).astype("float64")
    return out


def resolve(frame: pd.DataFrame, schema: Schema) -> Schema:
    """The schema with undeclared categorical values and class labels taken from ``frame``."""
    features = tuple(
        Column(c.name, c.kind, tuple(sorted(frame[c.name].unique())))
        if c.categorical and not c.values
        else c
        for c in schema.features
    )
    classes = schema.classes
    if schema.task == "classification":
        classes = tuple(str(c) for c in classes) or tuple(sorted(frame[schema.target].unique()))
    return schema.with_(features=features, classes=classes)


__all__ = [
    "BUILTIN_TABLES",
    "DataError",
    "Dataset",
    "Splits",
    "builtin_names",
    "check_table",
    "load_dataset",
    "read_table",
    "source_origin",
    "split_dataset",
]
