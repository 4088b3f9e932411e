"""Checks run before any trial (and by ``sweep validate``): trainable, data, tracking, storage.

Each failure is one line naming the field or address and the cause. Nothing here imports
TensorFlow or starts Ray.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sweeps.errors import PreflightError
from sweeps.spec import SweepSpec
from sweeps.storage import check_writable, resolve_storage
from sweeps.tracking import is_local_store, make_client, redact_uri, resolve_tracking_uri
from trainable.data import DataError, Dataset, Splits, load_dataset, split_dataset

TRACKING_TIMEOUT_S = 10


@dataclass(frozen=True)
class Prepared:
    """Everything a sweep needs, checked: the trainable, the data and where results go."""

    spec: SweepSpec
    trainable: Callable[..., Any]
    dataset: Dataset
    splits: Splits
    tracking_uri: str
    storage_path: str


def preflight(spec: SweepSpec) -> Prepared:
    """Run every check that can fail before training; return what the sweep needs.

    Raises:
        PreflightError: one line per problem found.
    """
    problems: list[str] = []
    trainable = _attempt(problems, lambda: load_trainable(spec.trainable))
    dataset = _attempt(problems, lambda: load_data(spec))
    tracking_uri = resolve_tracking_uri(spec.tracking.uri)
    _attempt(problems, lambda: check_tracking(tracking_uri, spec.experiment))
    storage_path = resolve_storage(spec.storage)
    _attempt(problems, lambda: check_writable(storage_path))
    if problems:
        raise PreflightError(*problems)
    split = spec.data.split
    splits = split_dataset(dataset, split.val, split.test, split.seed)
    return Prepared(spec, trainable, dataset, splits, tracking_uri, storage_path)


def _attempt(problems: list[str], check: Callable[[], Any]) -> Any:
    try:
        return check()
    except (PreflightError, DataError) as exc:
        problems.extend(exc.problems)
        return None


def load_trainable(path: str) -> Callable[..., Any]:
    """Import ``module:function``: the only code a spec can make the sweeper run."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PreflightError(f"trainable: cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the module's own code failed at import
        raise PreflightError(
            f"trainable: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise PreflightError(f"trainable: module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise PreflightError(f"trainable: {path} is not a function")
    return fn


def load_data(spec: SweepSpec) -> Dataset:
    """Read and validate the spec's data (raises DataError listing every problem)."""
    return load_dataset(spec.data.source, spec.data.target)


def check_tracking(uri: str, experiment: str) -> None:
    """The tracking store answers and the experiment can be found (or created later).

    Raises:
        PreflightError: naming the address and the cause (connection refused, timeout, ...).
    """
    if is_local_store(uri):
        _check_local_store(uri)
        return
    if uri.startswith(("http://", "https://")):
        _check_http_server(uri)
    with _quick_mlflow_requests():
        try:
            make_client(uri).get_experiment_by_name(experiment)
        except Exception as exc:  # noqa: BLE001 - any failure means the server is unusable
            raise PreflightError(
                f"tracking.uri: {redact_uri(uri)} does not answer: {_brief(exc)}"
            ) from None


def _check_local_store(uri: str) -> None:
    path = uri.split(":///", 1)[1] if ":///" in uri else uri.removeprefix("file:")
    folder = os.path.dirname(os.path.abspath(path)) if uri.startswith("sqlite") else path
    probe = folder
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.access(probe or ".", os.W_OK):
        raise PreflightError(f"tracking.uri: cannot write the local MLflow store at {folder}")


def _check_http_server(uri: str) -> None:
    import requests

    url = uri.rstrip("/") + "/health"
    try:
        requests.get(url, timeout=TRACKING_TIMEOUT_S)
    except requests.exceptions.ConnectionError as exc:
        cause = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
        raise PreflightError(f"tracking.uri: MLflow server {redact_uri(uri)}: {cause}") from None
    except requests.exceptions.Timeout:
        raise PreflightError(
            f"tracking.uri: MLflow server {redact_uri(uri)}: no answer in {TRACKING_TIMEOUT_S}s"
        ) from None


class _quick_mlflow_requests:
    """Fail fast instead of MLflow's default minutes of HTTP retries."""

    _settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}

    def __enter__(self) -> None:
        self._saved = {k: os.environ.get(k) for k in self._settings}
        os.environ.update(self._settings)

    def __exit__(self, *exc: Any) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _brief(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]
