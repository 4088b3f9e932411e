"""The abalone table: loading from a source, schema validation, seeded split, fingerprint.

Pure pandas/numpy (no TensorFlow), so the driver can validate data before any trial starts.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainable.aws import describe_aws_error, split_s3_uri

SEX = "sex"
SEX_CODES = ("F", "I", "M")
NUMERIC_FEATURES = (
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
)
FEATURES = (SEX, *NUMERIC_FEATURES)
DEFAULT_TARGET = "rings"
BUILTIN_ABALONE = "builtin:abalone"
MIN_ROWS = 100


class DataError(ValueError):
    """The data cannot be read or does not match the expected schema.

    ``problems`` holds one human-readable line per problem found.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Dataset:
    """A validated table with where it came from and a fingerprint of its content."""

    frame: pd.DataFrame
    source: str
    target: str
    sha256: str

    @property
    def features(self) -> pd.DataFrame:
        return self.frame[list(FEATURES)]


@dataclass(frozen=True)
class Splits:
    """Train/validation/test frames (features and target columns only)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    target: str

    def xy(self, part: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One split's features as ``{column: 1-D array}`` (the model's input), and its target."""
        frame = getattr(self, part)
        return to_model_inputs(frame), frame[self.target].to_numpy(dtype="float32")

    def without_test(self) -> Splits:
        """The same splits with an empty test frame: what trials need (less to ship)."""
        return Splits(self.train, self.val, self.test.iloc[0:0], self.target)


def to_model_inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Raw feature columns as the dict of 1-D arrays the Keras model takes."""
    inputs = {col: frame[col].to_numpy(dtype="float32") for col in NUMERIC_FEATURES}
    inputs[SEX] = frame[SEX].astype(str).to_numpy(dtype=object)
    return inputs


def load_dataset(source: str, target: str = DEFAULT_TARGET) -> Dataset:
    """Read ``source`` (``builtin:abalone``, a CSV path or ``s3://bucket/key.csv``) and validate it.

    Raises:
        DataError: the source cannot be read or the table does not have the abalone schema.
    """
    raw = _read_bytes(source)
    frame = _parse_csv(raw, source)
    validate_frame(frame, target, source)
    frame = frame[[*FEATURES, target]].copy()
    frame[SEX] = frame[SEX].astype(str).str.strip()
    for col in (*NUMERIC_FEATURES, target):
        frame[col] = pd.to_numeric(frame[col])
    return Dataset(
        frame=frame, source=source, target=target, sha256=hashlib.sha256(raw).hexdigest()
    )


def _read_bytes(source: str) -> bytes:
    if source == BUILTIN_ABALONE:
        from sklego.datasets import load_abalone

        frame = load_abalone(as_frame=True)
        return frame.to_csv(index=False).encode()
    if source.startswith("builtin:"):
        raise DataError(
            [f"data.source: unknown built-in data set {source!r}; allowed: {BUILTIN_ABALONE}"]
        )
    if source.startswith("s3://"):
        return _read_s3(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError([f"data.source: file not found: {path.resolve()}"])
    if path.is_dir():
        raise DataError([f"data.source: {path.resolve()} is a folder; expected a CSV file"])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError([f"data.source: cannot read {path.resolve()}: {exc.strerror}"]) from None
    if not raw.strip():
        raise DataError(
            [f"data.source: {path.resolve()} is empty; expected a CSV file with a header row"]
        )
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
        raise DataError([f"data.source: {uri} is empty; expected a CSV file with a header row"])
    return body


def _parse_csv(raw: bytes, source: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.BytesIO(raw), skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError([f"data.source: {source} is not a readable CSV file ({first})"]) from None
    except pd.errors.EmptyDataError:
        raise DataError([f"data.source: {source} has no header row"]) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def validate_frame(frame: pd.DataFrame, target: str, source: str = "data") -> None:
    """Check columns, types, codes, missing values and size; raise one line per problem.

    Raises:
        DataError: listing every problem, each naming the column and a sample bad row.
    """
    expected = [*FEATURES, target]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:12])) or "none"
        raise DataError(
            [
                f"data: {source} lacks column(s) {', '.join(missing)} (found: {found}); "
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
                f"first at row {_row_number(frame, blank)}"
            )
            continue
        if col == SEX:
            bad = ~values.astype(str).str.strip().isin(SEX_CODES)
            if bad.any():
                problems.append(
                    f"data: column 'sex' has unknown code {values[bad].iloc[0]!r} at row "
                    f"{_row_number(frame, bad)}; allowed: {', '.join(SEX_CODES)}"
                )
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna() | ~np.isfinite(numeric.astype(float))
        if bad.any():
            problems.append(
                f"data: column {col!r} has non-numeric value {values[bad].iloc[0]!r} at row "
                f"{_row_number(frame, bad)}; expected a number"
            )
    if len(frame) < MIN_ROWS:
        problems.append(f"data: {source} has {len(frame)} rows; at least {MIN_ROWS} are needed")
    if problems:
        raise DataError(problems)


def _row_number(frame: pd.DataFrame, mask: pd.Series) -> int:
    """1-based data row number (the header is row 0) of the first True in ``mask``."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


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
        target=dataset.target,
    )
