"""A read-only reader of a local MLflow SQLite store, for ``sweep ls``, ``status`` and ``best``.

``import mlflow`` and opening its SQLAlchemy store cost over 2 s; the views read a few tables,
so for a ``sqlite:///`` store they read them with :mod:`sqlite3` instead. The reader answers the
few :class:`mlflow.MlflowClient` calls :mod:`sweeps.views.queries` makes (``search_runs`` with
``tags.`K` = 'V'`` / ``attributes.run_name|status = 'V'`` conditions joined by ``and``),
with objects shaped like MLflow's (``run.info.run_id``, ``run.data.metrics``, ...). It opens
only a store whose tables have the columns it reads (:func:`open_local`); any other store, or
URI, is read through MLflow.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

#: The tables and columns read here (MLflow's schema since 2.x).
REQUIRED = {
    "experiments": {"experiment_id", "name", "lifecycle_stage"},
    "runs": {
        "run_uuid",
        "name",
        "status",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "experiment_id",
    },
    "tags": {"key", "value", "run_uuid"},
    "params": {"key", "value", "run_uuid"},
    "latest_metrics": {"key", "value", "step", "is_nan", "run_uuid"},
    "metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    "model_versions": {"name", "version", "run_id", "current_stage"},
    "model_version_tags": {"key", "value", "name", "version"},
    "registered_model_aliases": {"alias", "version", "name"},
}
_CONDITION = re.compile(
    r"\s*(?:tags\.`(?P<tag>[^`]+)`|attributes\.(?P<attr>run_name|status))"
    r"\s*=\s*'(?P<value>(?:[^'\\]|\\.)*)'\s*(?:and\s+|$)",
    re.IGNORECASE,
)
_ATTRIBUTES = {"run_name": "name", "status": "status"}
_CHUNK = 500  # run ids per IN (...) query
#: The workspace MLflow reads when none is set (stores with a ``workspace`` column).
DEFAULT_WORKSPACE = "default"


@dataclass
class RunInfo:
    run_id: str
    run_name: str
    status: str
    start_time: int | None
    end_time: int | None
    experiment_id: str
    lifecycle_stage: str


@dataclass
class RunData:
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    """A run as the views read it: :class:`RunInfo` and :class:`RunData`."""

    info: RunInfo
    data: RunData


class Page(list):
    """A page of runs; the reader returns every match at once (``token`` None)."""

    token: str | None = None


@dataclass
class Experiment:
    experiment_id: str
    name: str
    lifecycle_stage: str


@dataclass
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    tags: dict[str, str]
    aliases: list[str]


class RunNotFound(LookupError):
    """No (live) run with that id."""


def open_local(path: str) -> LocalStore | None:
    """A reader of the SQLite store at ``path``, or None if its tables are not all there
    with the columns read here (a store MLflow has not created yet, or a schema of another
    MLflow version): then MLflow reads it."""
    workspaces = False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        for table, columns in REQUIRED.items():
            found = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not columns <= found:
                conn.close()
                return None
            workspaces = workspaces or "workspace" in found
    except sqlite3.Error:
        return None
    workspace = os.environ.get("MLFLOW_WORKSPACE") or DEFAULT_WORKSPACE
    return LocalStore(conn, workspace if workspaces else None)


class LocalStore:
    """The subset of :class:`mlflow.MlflowClient` the views call, on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection, workspace: str | None = None) -> None:
        self.conn = conn
        # MLflow's workspace (stores whose experiments and models have one), else None.
        self.workspace = workspace
        self._in_workspace = " AND workspace = ?" if workspace else ""
        self._workspace_args = (workspace,) if workspace else ()

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        row = self.conn.execute(
            "SELECT experiment_id, name, lifecycle_stage FROM experiments WHERE name = ?"
            + self._in_workspace,
            (name, *self._workspace_args),
        ).fetchone()
        return Experiment(str(row[0]), row[1], row[2]) if row else None

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page:
        """The live runs of ``experiment_ids`` matching ``filter_string``, newest first (the
        only order the views ask for), all in one page."""
        sql = ["SELECT run_uuid FROM runs WHERE lifecycle_stage = 'active'"]
        args: list[Any] = []
        sql.append(f"AND experiment_id IN ({', '.join('?' * len(experiment_ids))})")
        args += [int(e) for e in experiment_ids]
        for tag, attr, value in _conditions(filter_string):
            if tag is not None:
                sql.append(
                    "AND run_uuid IN (SELECT run_uuid FROM tags WHERE key = ? AND value = ?)"
                )
                args += [tag, value]
            else:
                sql.append(f"AND {_ATTRIBUTES[attr.lower()]} = ?")
                args.append(value)
        sql.append("ORDER BY start_time DESC, run_uuid")
        if max_results:
            sql.append(f"LIMIT {int(max_results)}")
        ids = [row[0] for row in self.conn.execute(" ".join(sql), args)]
        return Page(self._runs(ids))

    def get_run(self, run_id: str) -> Run:
        runs = self._runs([run_id])
        if not runs:
            raise RunNotFound(run_id)
        return runs[0]

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        rows = self.conn.execute(
            "SELECT key, value, timestamp, step, is_nan FROM metrics "
            "WHERE run_uuid = ? AND key = ? ORDER BY timestamp, step",
            (run_id, key),
        )
        return [Metric(k, math.nan if nan else v, ts, step) for k, v, ts, step, nan in rows]

    def search_model_versions(self, filter_string: str) -> list[ModelVersion]:
        """Versions with one tag (``tags.KEY = 'VALUE'``), aliases included."""
        match = re.fullmatch(r"\s*tags\.`?(\w+)`?\s*=\s*'((?:[^'\\]|\\.)*)'\s*", filter_string)
        if not match:
            raise ValueError(f"unsupported model version filter: {filter_string!r}")
        in_workspace = (
            " AND v.workspace = ? AND t.workspace = v.workspace" if self.workspace else ""
        )
        rows = self.conn.execute(
            "SELECT v.name, v.version, v.run_id FROM model_versions v JOIN model_version_tags t "
            "ON t.name = v.name AND t.version = v.version WHERE t.key = ? AND t.value = ? "
            f"AND v.current_stage != 'Deleted_Internal'{in_workspace} ORDER BY v.name, v.version",
            (match[1], _unescape(match[2]), *self._workspace_args),
        ).fetchall()
        return [self.get_model_version(name, version) for name, version, _ in rows]

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        key = (name, int(version), *self._workspace_args)
        where = "WHERE name = ? AND version = ?" + self._in_workspace
        row = self.conn.execute(f"SELECT run_id FROM model_versions {where}", key).fetchone()
        tags = dict(self.conn.execute(f"SELECT key, value FROM model_version_tags {where}", key))
        aliases = sorted(
            a
            for (a,) in self.conn.execute(
                f"SELECT alias FROM registered_model_aliases {where}", key
            )
        )
        return ModelVersion(name, int(version), row[0] if row else None, tags, aliases)

    def _runs(self, ids: list[str]) -> list[Run]:
        """The runs ``ids`` (live ones), with params, tags and latest metrics, in that order."""
        runs: dict[str, Run] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in self.conn.execute(
                "SELECT run_uuid, name, status, start_time, end_time, experiment_id, "
                f"lifecycle_stage FROM runs WHERE run_uuid IN ({marks}) "
                "AND lifecycle_stage = 'active'",
                chunk,
            ):
                runs[row[0]] = Run(
                    RunInfo(row[0], row[1] or "", *row[2:5], str(row[5]), row[6]), RunData()
                )
            for table, attr in (("params", "params"), ("tags", "tags")):
                for run_id, key, value in self.conn.execute(
                    f"SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN ({marks})", chunk
                ):
                    if run_id in runs:
                        getattr(runs[run_id].data, attr)[key] = value
            for run_id, key, value, nan in self.conn.execute(
                "SELECT run_uuid, key, value, is_nan FROM latest_metrics "
                f"WHERE run_uuid IN ({marks})",
                chunk,
            ):
                if run_id in runs:
                    runs[run_id].data.metrics[key] = math.nan if nan else float(value)
        return [runs[i] for i in ids if i in runs]


def _conditions(filter_string: str) -> list[tuple[str | None, str | None, str]]:
    """``(tag, None, value)`` or ``(None, attribute, value)`` per condition of a filter."""
    conditions = []
    pos = 0
    text = filter_string.strip()
    while pos < len(text):
        match = _CONDITION.match(text, pos)
        if not match:
            raise ValueError(f"unsupported run filter: {filter_string!r}")
        conditions.append((match["tag"], match["attr"], _unescape(match["value"])))
        pos = match.end()
    return conditions


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
