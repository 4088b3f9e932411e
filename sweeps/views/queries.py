"""Queries behind ``sweep ls``, ``status`` and ``best``: sweeps, trials and registered versions,
read from MLflow alone (:mod:`sweeps.views.tables` shows them).

Everything here comes from the tracking store, so it works for sweeps run on another machine
or a cluster: parent runs are tagged ``sweep.role=sweep``, their trials are the child runs
(``mlflow.parentRunId``), and the registered version carries the tag ``sweep_run_id``.
No TensorFlow and no Ray are imported; a local SQLite store is read without MLflow too
(:mod:`sweeps.views.local_store`: importing MLflow alone costs over 2 s).
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeps.config.spec import default_experiment
from sweeps.errors import UserError
from sweeps.record.client import (
    is_local_store,
    make_client,
    quick_requests,
    redact_uri,
    resolve_tracking_uri,
)
from sweeps.record.runs import TAG_PARENT, TAG_ROLE, TAG_SWEEP_NAME, TAG_TRIAL_NUMBER
from trainable.contract import Objective

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

DEFAULT_LIMIT = 20
#: Run states in the order they are shown.
STATES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_OBJECTIVE = re.compile(r"^(?P<metric>.+) \((?P<mode>min|max)\)$")
_PAGE = 1000


@dataclass(frozen=True)
class Store:
    """An opened tracking store and the experiment the views look at."""

    client: MlflowClient  # or, for a local SQLite store, a LocalStore that reads it alike
    uri: str
    experiment_id: str
    experiment: str

    def where(self) -> str:
        """``experiment 'NAME' at URI``, for messages."""
        return f"experiment '{self.experiment}' at {redact_uri(self.uri)}"


@dataclass(frozen=True)
class SweepView:
    """One sweep's parent run and its trials, with what the views derive from them."""

    parent: Run
    trials: list[Run]

    @property
    def name(self) -> str:
        """The parent run's name, e.g. ``abalone-20261127-163630-3fa2``."""
        return self.parent.info.run_name or self.parent.info.run_id

    @property
    def objective(self) -> Objective:
        """What the sweep optimised (params ``search.metric`` and ``search.mode``)."""
        params = self.parent.data.params
        mode = "max" if params.get("search.mode") == "max" else "min"
        return Objective(params.get("search.metric", ""), mode)

    @property
    def objectives(self) -> list[Objective]:
        """Every objective, the primary first: param ``search.metrics``
        (``val_loss (min), params (min)``) when the sweep had several, else :attr:`objective`."""
        parsed = []
        for part in self.parent.data.params.get("search.metrics", "").split(", "):
            match = _OBJECTIVE.match(part.strip())
            if match:
                parsed.append(Objective(match["metric"], match["mode"]))  # type: ignore[arg-type]
        return parsed if len(parsed) > 1 else [self.objective]

    @property
    def metric(self) -> str:
        return self.objective.metric

    @property
    def mode(self) -> str:
        return self.objective.mode

    @property
    def test_metric(self) -> str:
        """The test metric the registered version is judged by (param ``register.metric``)."""
        return self.parent.data.params.get("register.metric") or self.objective.test_metric

    @property
    def planned(self) -> int | None:
        """Trials the spec asked for (param ``search.num_samples``)."""
        value = self.parent.data.params.get("search.num_samples", "")
        return int(value) if value.isdigit() else None

    def states(self) -> Counter[str]:
        """Trials by run status (RUNNING, FINISHED, FAILED, KILLED, ...)."""
        return Counter(run.info.status for run in self.trials)

    def trial_value(self, run: Run) -> float | None:
        """A trial's best value of the metric so far: its ``best_<metric>`` metric if logged,
        else the latest ``<metric>``."""
        return trial_metric(run, self.metric)

    def best_trial(self) -> tuple[Run, float] | None:
        """The trial with the best value (by ``search.mode``), or None if none reported."""
        scored = [(run, v) for run in self.trials if (v := self.trial_value(run)) is not None]
        if not scored:
            return None
        key = self.objective.key
        return min(scored, key=lambda pair: (key(pair[1]), _trial_number(pair[0])))

    def best_value(self) -> float | None:
        """The parent's ``best_<metric>`` once the sweep ended, else the best trial's so far."""
        value = self.parent.data.metrics.get(f"best_{self.metric}")
        if value is not None:
            return float(value)
        best = self.best_trial()
        return best[1] if best else None

    def elapsed_s(self) -> float | None:
        """Seconds from the parent run's start to its end (or to now while it runs)."""
        start, end = self.parent.info.start_time, self.parent.info.end_time
        if not start:
            return None
        if not end or self.parent.info.status == "RUNNING":
            end = int(time.time() * 1000)
        return max(0.0, (end - start) / 1000)


def trial_metric(run: Run, metric: str) -> float | None:
    """A trial run's best value of ``metric`` so far: its ``best_<metric>`` metric if logged,
    else the latest ``<metric>`` (None if neither is a finite number)."""
    metrics = run.data.metrics
    for key in (f"best_{metric}", metric):
        value = metrics.get(key)
        if value is not None and math.isfinite(value):
            return float(value)
    return None


def open_store(tracking_uri: str | None = None, experiment: str | None = None) -> Store:
    """Connect to the tracking store (resolved like ``sweep run`` does) and find the experiment.

    Raises:
        UserError: the store does not exist or answer, or has no such experiment.
    """
    _quiet_mlflow()
    uri = resolve_tracking_uri(tracking_uri)
    name = experiment or default_experiment()
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        if not os.path.isfile(path):
            raise UserError(
                f"no MLflow store at {path}: run a sweep here first, or give --tracking-uri "
                "(or set MLFLOW_TRACKING_URI)"
            )
    elif not is_local_store(uri):
        _check_reachable(uri, name)
    with quick_requests():
        client = _local_reader(uri) or make_client(uri)
        found = _query(uri, lambda: client.get_experiment_by_name(name))
    if found is None or found.lifecycle_stage == "deleted":
        raise UserError(
            f"no experiment '{name}' at {redact_uri(uri)}; give the sweep's experiment with "
            "--experiment"
        )
    return Store(client, uri, found.experiment_id, name)


def list_sweeps(store: Store, limit: int = DEFAULT_LIMIT) -> list[Run]:
    """The experiment's sweep parent runs, newest first."""
    with quick_requests():
        return _query(
            store.uri,
            lambda: store.client.search_runs(
                [store.experiment_id],
                filter_string=f"tags.`{TAG_ROLE}` = 'sweep'",
                order_by=["attributes.start_time DESC"],
                max_results=max(1, limit),
            ),
        )


def find_sweep(store: Store, target: str | None = None) -> Run:
    """The parent run ``target`` names: a run id, a parent run name
    (``abalone-20261127-163630-3fa2``), or a spec name (its newest sweep); None: the newest sweep.

    Raises:
        UserError: nothing matches.
    """
    if not target:
        newest = list_sweeps(store, 1)
        if not newest:
            raise UserError(f"no sweeps in {store.where()}; start one with `sweep run`")
        return newest[0]
    if _RUN_ID.match(target):
        run = _run_by_id(store, target)
        if run is not None:
            return run
    quoted = target.replace("'", "\\'")
    for condition in (f"attributes.run_name = '{quoted}'", f"tags.`{TAG_SWEEP_NAME}` = '{quoted}'"):
        with quick_requests():
            runs = _query(
                store.uri,
                lambda condition=condition: store.client.search_runs(
                    [store.experiment_id],
                    filter_string=f"tags.`{TAG_ROLE}` = 'sweep' and {condition}",
                    order_by=["attributes.start_time DESC"],
                    max_results=1,
                ),
            )
        if runs:
            return runs[0]
    raise UserError(
        f"no sweep named {target!r} in {store.where()}; `sweep ls` lists the sweeps "
        "(give a parent run name like abalone-20261127-163630-3fa2 or a run id)"
    )


def trials_of(store: Store, parent_run_id: str) -> list[Run]:
    """Every (not deleted) child run of a sweep, in trial order."""
    runs: list[Run] = []
    token = None
    with quick_requests():
        while True:
            page = _query(
                store.uri,
                lambda token=token: store.client.search_runs(
                    [store.experiment_id],
                    filter_string=f"tags.`{TAG_PARENT}` = '{parent_run_id}'",
                    max_results=_PAGE,
                    page_token=token,
                ),
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
    return sorted(runs, key=_trial_number)


def sweep_view(store: Store, target: str | None = None) -> SweepView:
    """The sweep ``target`` names (see :func:`find_sweep`) with its trials."""
    parent = find_sweep(store, target)
    return SweepView(parent, trials_of(store, parent.info.run_id))


def objective_values(store: Store, view: SweepView, run: Run) -> tuple[float, ...] | None:
    """A trial's value of each of the sweep's objectives at its best epoch of the primary
    metric (logged ``best_epoch``; the latest values while it has none), as the sweep's
    ``pareto.csv`` takes them; None if one is missing. One metric-history request per
    objective after the first."""
    primary = view.trial_value(run)
    if primary is None:
        return None
    values = [primary]
    best_epoch = run.data.metrics.get("best_epoch")
    for objective in view.objectives[1:]:
        value = run.data.metrics.get(objective.metric)
        if best_epoch is not None:
            with quick_requests():
                history = _query(
                    store.uri,
                    lambda m=objective.metric: store.client.get_metric_history(run.info.run_id, m),
                )
            at_best = [m.value for m in history if m.step == int(best_epoch)]
            value = at_best[-1] if at_best else value
        if value is None or not math.isfinite(value):
            return None
        values.append(float(value))
    return tuple(values)


def pareto_front(store: Store, view: SweepView) -> list[tuple[Run, tuple[float, ...]]]:
    """The sweep's Pareto front from MLflow alone (see :mod:`sweeps.search.pareto`): the
    trials not FAILED with every objective's value, none dominated; best primary value first."""
    from sweeps.search.pareto import non_dominated, ranking_key

    objectives = view.objectives
    scored = [
        (run, values)
        for run in view.trials
        if run.info.status != "FAILED" and (values := objective_values(store, view, run))
    ]
    front = [scored[i] for i in non_dominated([v for _, v in scored], objectives)]
    return sorted(front, key=lambda rv: (*ranking_key(rv[1], objectives), _trial_number(rv[0])))


def registered_versions(store: Store, parent_run_id: str) -> list[ModelVersion]:
    """Model versions registered from a sweep (tag ``sweep_run_id``), with their aliases."""
    with quick_requests():
        found = _query(
            store.uri,
            lambda: store.client.search_model_versions(f"tags.sweep_run_id = '{parent_run_id}'"),
        )
        # search results carry no aliases; a get does
        return [
            _query(store.uri, lambda v=v: store.client.get_model_version(v.name, v.version))
            for v in found
        ]


def _local_reader(uri: str) -> Any:
    """A :class:`~sweeps.views.local_store.LocalStore` for a ``sqlite:///`` store whose schema
    it reads, else None (MLflow reads the store)."""
    if not uri.startswith("sqlite:///"):
        return None
    from sweeps.views.local_store import open_local

    return open_local(uri.removeprefix("sqlite:///"))


def _check_reachable(uri: str, experiment: str) -> None:
    """A server answers (fast), else one line naming it and the cause."""
    from sweeps.running.preflight import check_tracking

    try:
        check_tracking(uri, experiment)
    except UserError as exc:
        raise UserError(
            *(p.replace("tracking.uri: ", "tracking URI: ", 1) for p in exc.problems)
        ) from None


def _quiet_mlflow() -> None:
    """No MLflow store-migration INFO lines or warnings between the tables."""
    import logging
    import warnings

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")


def _query(uri: str, call: Any) -> Any:
    """Run an MLflow call; any failure becomes one readable line."""
    try:
        return call()
    except (OSError, sqlite3.Error) as exc:
        raise UserError(f"MLflow at {redact_uri(uri)}: {exc}") from None
    except Exception as exc:
        if not _is_mlflow_error(exc):
            raise
        text = (exc.message or str(exc)).strip().splitlines()
        raise UserError(f"MLflow at {redact_uri(uri)}: {text[0][:300] if text else exc}") from None


def _is_mlflow_error(exc: BaseException) -> bool:
    """An ``MlflowException`` (MLflow is imported only if it is in use)."""
    if "mlflow" not in sys.modules:
        return False
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException)


def _run_by_id(store: Store, run_id: str) -> Run | None:
    from sweeps.views.local_store import RunNotFound

    try:
        with quick_requests():
            run = store.client.get_run(run_id)
    except RunNotFound:
        return None
    except Exception as exc:
        if _is_mlflow_error(exc):
            return None
        raise
    role = run.data.tags.get(TAG_ROLE)
    if role == "trial":
        parent = run.data.tags.get(TAG_PARENT)
        raise UserError(f"run {run_id} is a trial ({run.info.run_name}); its sweep is run {parent}")
    if role != "sweep":
        raise UserError(f"run {run_id} is not a sweep's parent run (no tag {TAG_ROLE}=sweep)")
    return run


def _trial_number(run: Run) -> int:
    value = run.data.tags.get(TAG_TRIAL_NUMBER, "")
    return int(value) if value.isdigit() else 1 << 30
