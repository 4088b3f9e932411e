"""Checks run before any trial (and by ``sweep validate``): family, data, tracking, storage.

Each failure is one line naming the field or address and the cause. Nothing here imports
TensorFlow or starts Ray (a family's module must not import TensorFlow at import time).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.config.spec import SweepSpec
from sweeps.errors import PreflightError
from sweeps.record.client import (
    is_local_store,
    make_client,
    quick_requests,
    redact_uri,
    resolve_tracking_uri,
    scrub_urls,
)
from sweeps.running.storage import check_writable, resolve_storage
from trainable.contract import ModelFamily, Schema
from trainable.tables import DataError, Dataset, Splits, load_dataset, split_dataset

if TYPE_CHECKING:
    from sweeps.search.warm_start import Prior

TRACKING_TIMEOUT_S = 10


@dataclass(frozen=True)
class Prepared:
    """Everything a sweep needs, checked: the family, the data and where results go."""

    spec: SweepSpec
    family: ModelFamily
    dataset: Dataset
    splits: Splits
    tracking_uri: str
    storage_path: str
    prior: Prior | None = None  # a warm start's earlier trials

    @property
    def schema(self) -> Schema:
        """The table's schema as loaded (categories and classes filled in from the data)."""
        return self.dataset.schema


def preflight(spec: SweepSpec) -> Prepared:
    """Run every check that can fail before training; return what the sweep needs.

    Raises:
        PreflightError: one line per problem found.
    """
    problems: list[str] = []
    _attempt(problems, lambda: check_search(spec))
    family = _attempt(problems, lambda: load_family(spec.trainable, spec.folder))
    dataset = None
    if family is not None:
        _attempt(problems, lambda: check_objective(spec, family))
        dataset = _attempt(problems, lambda: load_data(spec, family))
    tracking_uri = resolve_tracking_uri(spec.tracking.uri)
    _attempt(problems, lambda: check_tracking(tracking_uri, spec.experiment_name))
    storage_path = resolve_storage(spec.storage)
    _attempt(problems, lambda: check_writable(storage_path))
    if problems:
        raise PreflightError(*problems)
    split = spec.data.split
    splits = split_dataset(dataset, split.val, split.test, split.seed)
    prior = None
    if spec.search.warm_start:
        from sweeps.search.warm_start import find_prior

        prior = find_prior(spec, tracking_uri, dataset.sha256)
    return Prepared(spec, family, dataset, splits, tracking_uri, storage_path, prior)


def check_search(spec: SweepSpec) -> None:
    """The search algorithm can search this space for this many objectives (a grid's size)."""
    from sweeps.search.samplers import check_algorithm

    try:
        check_algorithm(spec.search, len(spec.search.objectives))
    except ValueError as exc:
        raise PreflightError(str(exc)) from None


def _attempt(problems: list[str], check: Callable[[], Any]) -> Any:
    try:
        return check()
    except (PreflightError, DataError) as exc:
        problems.extend(exc.problems)
        return None


def load_family(path: str, folder: str | None = None) -> ModelFamily:
    """Import ``module:attr`` (the only code a spec can make the sweeper run) and return the
    model family it names: a :class:`~trainable.contract.ModelFamily` instance, or a subclass
    (instantiated with no arguments).

    A module in ``folder`` (the spec's) is found there; unless it is importable anyway, Ray is
    told to ship it by value to the trial workers, which do not have that folder on their path.
    """
    module_name, _, attr = path.partition(":")
    try:
        module = _import_beside(module_name, folder)
    except ImportError as exc:
        where = f" (looked in {folder} and the installed packages)" if folder else ""
        raise PreflightError(f"trainable: cannot import {module_name!r}{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the module's own code failed at import
        raise PreflightError(
            f"trainable: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    found = getattr(module, attr, None)
    if found is None:
        raise PreflightError(f"trainable: module {module_name!r} has no attribute {attr!r}")
    if isinstance(found, type) and issubclass(found, ModelFamily):
        try:
            found = found()
        except Exception as exc:  # noqa: BLE001 - the family's own constructor failed
            raise PreflightError(
                f"trainable: {path}() failed: {type(exc).__name__}: {exc}"
            ) from None
    if not isinstance(found, ModelFamily):
        raise PreflightError(
            f"trainable: {path} is a {type(found).__name__}, not a model family "
            "(a trainable.contract.ModelFamily, e.g. a KerasFamily subclass or instance)"
        )
    return found


#: Modules imported from a spec's folder only: Ray must pickle them by value (trial workers
#: do not have that folder on their path). See :func:`ship_local_modules`.
_LOCAL_MODULES: set[str] = set()


def _import_beside(module_name: str, folder: str | None) -> Any:
    """Import ``module_name``, also from ``folder`` (the spec's)."""
    top = module_name.split(".")[0]
    try:
        importable = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        importable = False
    if importable or not folder:
        return importlib.import_module(module_name)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = importlib.import_module(module_name)
    for name, loaded in list(sys.modules.items()):
        file = getattr(loaded, "__file__", None)
        if file and Path(file).resolve().is_relative_to(folder):
            _LOCAL_MODULES.add(name)
    return module


def ship_local_modules() -> None:
    """Have Ray pickle modules imported from a spec's folder by value (call before trials)."""
    from ray import cloudpickle

    for name in sorted(_LOCAL_MODULES):
        if name in sys.modules:
            cloudpickle.register_pickle_by_value(sys.modules[name])


def check_objective(spec: SweepSpec, family: ModelFamily) -> None:
    """The search metric is one the family reports (when the family says what it reports)."""
    field = "search.metrics" if spec.search.metrics else "search.metric"
    for objective in spec.search.objectives:
        metric = objective.metric
        if family.metrics and metric not in family.metrics:
            raise PreflightError(
                f"{field}: {metric!r} is not reported by {spec.trainable}; "
                f"it reports: {', '.join(family.metrics)}"
            )
    evaluated = family.test_metrics
    if spec.register.metric and evaluated and spec.register.metric not in evaluated:
        raise PreflightError(
            f"register.metric: {spec.register.metric!r} is not evaluated by {spec.trainable}; "
            f"allowed: {', '.join(sorted(evaluated))}"
        )


def declared_schema(spec: SweepSpec, family: ModelFamily) -> Schema:
    """The schema the data must have: the spec's declaration over the family's; features not
    declared anywhere are the table's other columns (see :func:`trainable.tables.load_dataset`)."""
    own = family.schema
    target = spec.data.target or (own.target if own else None)
    if not target:
        raise PreflightError(
            f"data.target: required; {spec.trainable} does not name a target column"
        )
    if spec.data.features is not None:
        features = spec.data.features
        if any(c.name == target for c in features):
            raise PreflightError(f"data.features: {target!r} is the target; list it only there")
    elif own is not None and own.target == target:
        features = own.features
    else:
        features = ()
    classes = own.classes if own is not None and own.target == target else ()
    return Schema(features=tuple(features), target=target, task=family.task, classes=classes)


def load_data(spec: SweepSpec, family: ModelFamily) -> Dataset:
    """Read the spec's data (or the family's default) and check it against the schema.

    Raises:
        DataError: listing every problem.
    """
    source = spec.data.source or family.default_source
    if not source:
        raise PreflightError(
            f"data.source: required; {spec.trainable} has no default table "
            "(give builtin:NAME, a CSV or Parquet file, or s3://bucket/key)"
        )
    local = not os.path.isabs(source) and "://" not in source and ":" not in source
    if local and not os.path.exists(source) and spec.folder:
        beside = os.path.join(spec.folder, source)
        source = beside if os.path.exists(beside) else source
    return load_dataset(source, declared_schema(spec, family))


def check_tracking(uri: str, experiment: str) -> None:
    """The tracking store answers and the experiment can be found (or created later).

    Raises:
        PreflightError: naming the address and the cause (connection refused, timeout, ...).
    """
    from sweeps.config.spec import CREDENTIALS_HELP, CREDENTIALS_IN_URI

    if CREDENTIALS_IN_URI.match(uri):  # from $MLFLOW_TRACKING_URI: the spec's is checked
        raise PreflightError(f"MLFLOW_TRACKING_URI {CREDENTIALS_HELP}")
    if is_local_store(uri):
        _check_local_store(uri)
        return
    if uri.startswith(("http://", "https://")):
        _check_http_server(uri)
    with quick_requests():
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


def _brief(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return scrub_urls(first)[:300]
