"""A sweep's runs in MLflow: one parent run, and one nested child run per trial.

All MLflow traffic leaves from the driver. Writes during the sweep go through a
:class:`~sweeps.record.writer.BackgroundWriter` (ordered, retried); each trial's child run is found
again by its ``ray.trial_id`` tag, so a resumed sweep reuses child runs instead of duplicating
them, and metric steps already logged are not logged twice.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sweeps.record.client import (
    dataset_input,
    ensure_experiment,
    git_commit,
    local_artifact_location,
    scrub_urls,
)
from sweeps.record.spool import Spool, spool_folder
from sweeps.record.writer import BackgroundWriter

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from sweeps.config.spec import SweepSpec
    from trainable.tables import Dataset

TAG_PARENT = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
TAG_TRIAL_ID = "ray.trial_id"
TAG_TRIAL_NUMBER = "sweep.trial_number"
TAG_ROLE = "sweep.role"
TAG_SWEEP_NAME = "sweep.name"
TAG_STORAGE = "sweep.storage"
TAG_SPEC_SHA = "sweep.spec_sha256"
TAG_DATA_SHA = "data.sha256"
TAG_DATA_SOURCE = "data.source"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_ERROR = "sweep.error"
TAG_END_REASON = "sweep.end_reason"
MAX_PARAM_LENGTH = 500
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch
#: Least seconds between two metric writes of one trial (see SweepTracker.log_epoch).
EPOCH_BATCH_S = 1.0
#: Most seconds a finished sweep waits for MLflow to take its last writes (an outage); the
#: rest stay journaled for ``sweep sync``.
END_FLUSH_S = float(os.environ.get("SWEEP_MLFLOW_END_WAIT_S", "120"))
#: Most seconds between two tries of a write during an outage (the wait doubles from 0.5 s).
RETRY_MAX_S = float(os.environ.get("SWEEP_MLFLOW_RETRY_MAX_S", "15"))


def trial_run_name(number: int) -> str:
    """``trial-0007``: the child run name a person can find."""
    return f"trial-{number:04d}"


def loggable_params(config: Mapping[str, Any]) -> dict[str, str]:
    """Hyperparameters as MLflow params (flat, stringified, within MLflow's length limit)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            for sub, val in loggable_params(value).items():
                out[f"{key}.{sub}"] = val
        else:
            out[str(key)] = str(value)[:MAX_PARAM_LENGTH]
    return out


def numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries of ``values`` (bools excluded)."""
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


class SweepTracker:
    """The MLflow side of one sweep.

    Create with :meth:`start` (new parent run) or :meth:`reopen` (a resumed sweep's parent).
    Writes after the start are queued on a background writer (and journaled in ``spool``, if
    given, until MLflow has them); call :meth:`flush` before reading.
    """

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        parent_tags: Mapping[str, str] | None = None,
        spool: Spool | None = None,
        fresh: bool = False,
    ) -> None:
        self.client = client
        # A parent run this driver just created has no child runs to find again: each trial's
        # run is created without a search (one that grows with the experiment's runs).
        self.fresh = fresh
        self.spool = spool  # the journal of queued writes, replayed after a driver's death
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.parent_tags = dict(parent_tags or {})  # lineage recorded when the sweep started
        self.writer = BackgroundWriter(retry_max_s=RETRY_MAX_S)
        self._children: dict[str, str] = {}  # Ray trial id -> MLflow run id
        self._last_step: dict[str, int] = {}  # MLflow run id -> last metric step written
        # Epochs not yet handed to the writer, per trial, and when each trial's were last sent.
        self._epochs_lock = threading.Lock()
        self._unsent: dict[str, list[tuple[int, dict[str, float], int]]] = {}
        self._last_sent: dict[str, float] = {}
        self._end_deadline: float | None = None  # set by the first wait of the sweep's end

    # ------------------------------------------------------------ sweep level (synchronous)

    def end_wait(self, timeout_s: float = END_FLUSH_S) -> float:
        """Seconds the sweep's end may still wait for MLflow, of one bound for the whole end:
        the first call starts ``timeout_s``; later calls get what is left of it (and at most
        their own ``timeout_s``), so the waits of the end add up to at most one bound."""
        now = time.monotonic()
        if self._end_deadline is None:
            self._end_deadline = now + timeout_s
        return max(0.0, min(timeout_s, self._end_deadline - now))

    @classmethod
    def start(
        cls,
        client: MlflowClient,
        spec: SweepSpec,
        dataset: Dataset,
        run_name: str,
        storage_path: str,
    ) -> SweepTracker:
        """Find or create the experiment and open the sweep's parent run."""
        experiment_id = ensure_experiment(
            client, spec.experiment_name, local_artifact_location(client.tracking_uri)
        )
        tags = {
            TAG_RUN_NAME: run_name,
            TAG_ROLE: "sweep",
            TAG_SWEEP_NAME: spec.name,
            TAG_STORAGE: storage_path,
            TAG_SPEC_SHA: spec.sha256,
            TAG_DATA_SHA: dataset.sha256,
            TAG_DATA_SOURCE: dataset.source,
        }
        commit = git_commit()
        if commit:
            tags[TAG_GIT_COMMIT] = commit
        run = client.create_run(experiment_id, tags=tags, run_name=run_name)
        spool = Spool(spool_folder(storage_path, run_name))
        tracker = cls(client, experiment_id, run.info.run_id, tags, spool, fresh=True)
        try:
            tracker._log_sweep_inputs(spec, dataset)
        except Exception as exc:
            tracker.end("FAILED", f"{type(exc).__name__}: {exc}", timeout_s=10)
            raise
        return tracker

    @classmethod
    def reopen(cls, client: MlflowClient, parent_run_id: str, folder: str) -> SweepTracker:
        """Attach to an existing parent run (a resumed sweep, whose storage folder is
        ``folder``); see :meth:`replay` and :meth:`mark_running`."""
        run = client.get_run(parent_run_id)
        spool = Spool(spool_folder(folder, run.info.run_name))
        return cls(client, run.info.experiment_id, parent_run_id, run.data.tags, spool)

    def mark_running(self) -> None:
        """Show a reopened parent run as running again."""
        self.client.update_run(self.parent_run_id, status="RUNNING")

    def _log_sweep_inputs(self, spec: SweepSpec, dataset: Dataset) -> None:
        from mlflow.entities import Param

        search = spec.search
        params = {
            "trainable": spec.trainable,
            "data.source": dataset.source,
            "data.target": dataset.target,
            "data.rows": str(len(dataset.frame)),
            "search.metric": spec.objective.metric,
            "search.mode": spec.objective.mode,
            "register.metric": spec.champion_objective.metric,
            "search.num_samples": str(search.num_samples),
            "search.max_concurrent": str(search.max_concurrent),
            "search.seed": str(search.seed),
            "search.algorithm": search.algorithm,
            "search.scheduler": search.scheduler.type if search.scheduler else "none",
            "search.space": ", ".join(spec.searched),
            "resources.cpu": str(spec.resources.cpu),
            "resources.gpu": str(spec.resources.gpu),
        }
        if search.metrics:
            params["search.metrics"] = ", ".join(
                f"{o.metric} ({o.mode})" for o in search.objectives
            )
        self.client.log_batch(
            self.parent_run_id, params=[Param(k, v[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        )
        self.client.log_text(self.parent_run_id, spec.to_yaml(), "spec.yaml")
        self.client.log_inputs(self.parent_run_id, datasets=[dataset_input(dataset)])

    def log_best(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Best trial's hyperparameters (``best.*`` params) and metrics on the parent run."""
        self._queue(
            "log the best trial",
            "log_parent",
            {f"best.{k}": v for k, v in loggable_params(params).items()},
            numeric_metrics(metrics),
            int(time.time() * 1000),
        )

    def tag_parent(self, tags: Mapping[str, str]) -> None:
        """Set ``tags`` on the parent run (queued)."""
        self._queue("tag the parent run", "tag_parent", dict(tags))

    def _tag_parent(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.parent_run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _log_parent(self, params: dict[str, str], metrics: dict[str, float], stamp: int) -> None:
        from mlflow.entities import Metric, Param

        self.client.log_batch(
            self.parent_run_id,
            params=[Param(k, v) for k, v in params.items()],
            metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
        )

    def artifacts_folder(self, name: str) -> str | None:
        """A folder for files to :meth:`log_artifacts` that lives as long as the journal (None
        without one: use a temporary folder that lives until :meth:`end`)."""
        return str(self.spool.artifacts(name)) if self.spool else None

    def log_artifacts(self, folder: str, artifact_path: str) -> None:
        """The files in ``folder`` as the parent run's ``artifact_path``."""
        self._queue(f"log {artifact_path}/", "log_artifacts", folder, artifact_path)

    def _log_artifacts(self, folder: str, artifact_path: str) -> None:
        self.client.log_artifacts(self.parent_run_id, folder, artifact_path)

    def end(
        self,
        status: str = "FINISHED",
        reason: str | None = None,
        timeout_s: float = END_FLUSH_S,
        tags: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Close the parent run with ``status`` (and ``reason``, why it did not finish, and
        ``tags`` as tags) after every queued write, retried through an outage for at most
        ``timeout_s`` in all with the end's earlier waits (:meth:`end_wait`). Returns the writes
        still unsent then, oldest first (empty when all arrived; the rest stay journaled for
        ``sweep sync``)."""
        self.flush(0)  # hand the trials' last epochs to the writer, ahead of the close
        self._queue(
            f"end the parent run ({status})", "end_parent", status, reason, dict(tags or {})
        )
        self.writer.flush(self.end_wait(timeout_s))
        unsent = self.writer.pending
        self.writer.close(0)
        if self.spool is not None and not unsent:
            self.spool.clear()
        return unsent

    def _end_parent(self, status: str, reason: str | None, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if reason:
            tags = {**tags, TAG_END_REASON: scrub_urls(reason)[:5000]}
        if tags:
            self.client.log_batch(self.parent_run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(self.parent_run_id, status=status)

    def replay(self) -> int:
        """Send the writes a previous driver of this sweep journaled but never sent, in order
        (synchronously). Returns how many were sent; a write MLflow rejects is skipped.

        Raises:
            Exception: MLflow is still unreachable (what is left stays journaled).
        """
        from sweeps.record.writer import is_retriable

        if self.spool is None:
            return 0
        sent = 0
        for entry, op, args in self.spool.pending():
            try:
                getattr(self, f"_{op}")(*args)
                sent += 1
            except Exception as exc:  # noqa: BLE001 - decided by is_retriable
                if is_retriable(exc):
                    raise
            self.spool.done(entry)
        self.spool.clear()
        return sent

    def _queue(self, label: str, op: str, *args: Any) -> None:
        """Queue ``self._<op>(*args)`` on the writer, journaled until MLflow has it."""
        method = getattr(self, f"_{op}")
        if self.spool is None:
            self.writer.submit(label, lambda: method(*args))
            return
        entry = self.spool.append(op, list(args))
        self.writer.submit(label, lambda: method(*args), finished=lambda: self.spool.done(entry))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued trial write has reached MLflow."""
        with self._epochs_lock:
            trial_ids = list(self._unsent)
        for trial_id in trial_ids:
            self._send_epochs(trial_id)
        return self.writer.flush(timeout_s)

    # ------------------------------------------------------------ trial level (queued)

    def finished_trials(self) -> int:
        """Child runs of this sweep that already ended (FINISHED or FAILED)."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{TAG_PARENT}` = '{self.parent_run_id}'"
        )
        return sum(r.info.status in ("FINISHED", "FAILED") for r in runs)

    def close_stale_children(self, failed_trial_ids: set[str], status: str = "FINISHED") -> None:
        """End child runs still marked RUNNING once the trials are over (queued): those of
        ``failed_trial_ids`` FAILED, the others ``status`` (their closing write was lost when a
        driver died, or, ``KILLED``, the sweep was stopped)."""
        self.flush(0)  # the trials' own closing writes go first
        self._queue(
            f"mark unfinished trial runs {status}", "close_stale", sorted(failed_trial_ids), status
        )

    def _close_stale(self, failed_trial_ids: list[str], status: str) -> None:
        stale = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{TAG_PARENT}` = '{self.parent_run_id}' and attributes.status = 'RUNNING'"
            ),
        )
        for run in stale:
            failed = run.data.tags.get(TAG_TRIAL_ID) in failed_trial_ids
            self.client.set_terminated(run.info.run_id, status="FAILED" if failed else status)

    def child_run_id(self, trial_id: str) -> str | None:
        """The child run of a trial, once created (call :meth:`flush` first to be sure)."""
        return self._children.get(trial_id)

    def open_trial(self, trial_id: str, number: int, config: Mapping[str, Any]) -> None:
        """Find (resumed sweep) or create the trial's nested child run, with its params."""
        with self._epochs_lock:  # its first epochs wait too: a short trial's go with its close
            self._last_sent.setdefault(trial_id, time.monotonic())
        self._queue(f"open {trial_run_name(number)}", "open_trial", trial_id, number, dict(config))

    def _open_trial(self, trial_id: str, number: int, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        if trial_id in self._children:
            self.client.update_run(self._children[trial_id], status="RUNNING")
            return
        same_number = (
            []
            if self.fresh
            else self.client.search_runs(
                [self.experiment_id],
                filter_string=(
                    f"tags.`{TAG_PARENT}` = '{self.parent_run_id}' "
                    f"and tags.`{TAG_TRIAL_NUMBER}` = '{number}'"
                ),
            )
        )
        existing = [r for r in same_number if r.data.tags.get(TAG_TRIAL_ID) == trial_id]
        for orphan in same_number:
            if orphan.data.tags.get(TAG_TRIAL_ID) != trial_id:
                # A trial that started after Tune's last state snapshot before the driver died:
                # the resumed sweep re-creates it under a new id, so its old run is dropped.
                self.client.set_tag(orphan.info.run_id, "sweep.superseded_by", trial_id)
                self.client.delete_run(orphan.info.run_id)
        if existing:
            run_id = existing[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            self._last_step[run_id] = self._last_logged_step(existing[0])
        else:
            name = trial_run_name(number)
            run = self.client.create_run(
                self.experiment_id,
                run_name=name,
                tags={
                    TAG_PARENT: self.parent_run_id,
                    TAG_RUN_NAME: name,
                    TAG_ROLE: "trial",
                    TAG_TRIAL_ID: trial_id,
                    TAG_TRIAL_NUMBER: str(number),
                },
            )
            run_id = run.info.run_id
            params = [Param(k, v) for k, v in loggable_params(config).items()]
            self.client.log_batch(run_id, params=params)
            self._last_step[run_id] = 0
        self._children[trial_id] = run_id

    def _run_of(self, trial_id: str) -> str:
        """The child run of ``trial_id``: known since :meth:`_open_trial`, or (a replay by
        another driver) found by its tag, with the last step it holds."""
        if trial_id not in self._children:
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=(
                    f"tags.`{TAG_PARENT}` = '{self.parent_run_id}' "
                    f"and tags.`{TAG_TRIAL_ID}` = '{trial_id}'"
                ),
            )
            if not runs:
                raise KeyError(f"no child run of trial {trial_id}")
            self._children[trial_id] = run_id = runs[0].info.run_id
            self._last_step[run_id] = self._last_logged_step(runs[0])
        return self._children[trial_id]

    def _last_logged_step(self, run: Any) -> int:
        return max(
            (
                m.step
                for key in run.data.metrics
                for m in self.client.get_metric_history(run.info.run_id, key)
            ),
            default=0,
        )

    def log_epoch(self, trial_id: str, step: int, metrics: Mapping[str, float]) -> None:
        """One epoch's metrics, with ``step``; skipped if already logged.

        Epochs of a trial are sent at most every :data:`EPOCH_BATCH_S` seconds, several in one
        ``log_batch`` (one write per epoch cost the driver about 10 ms of CPU that the trials
        needed); the rest go with the next epoch after that, the trial's end or :meth:`flush`.
        """
        now = time.monotonic()
        with self._epochs_lock:
            self._unsent.setdefault(trial_id, []).append(
                (step, dict(metrics), int(time.time() * 1000))
            )
            if now - self._last_sent.get(trial_id, -math.inf) < EPOCH_BATCH_S:
                return
            self._last_sent[trial_id] = now
        self._send_epochs(trial_id)

    def _send_epochs(self, trial_id: str) -> None:
        with self._epochs_lock:  # held while queueing, so batches of a trial keep their order
            epochs = self._unsent.pop(trial_id, [])
            if epochs:
                self._queue(
                    f"log steps {epochs[0][0]}-{epochs[-1][0]}", "log_epochs", trial_id, epochs
                )

    def _log_epochs(
        self,
        trial_id: str,
        epochs: list[tuple[int, dict[str, float], int]],
        final: Mapping[str, tuple[float, int]] | None = None,
    ) -> None:
        """``epochs`` (step, values, time) in as few writes as MLflow takes; ``final`` values
        (name -> value, time), logged at step 0 when the trial ends, ride with the last."""
        from mlflow.entities import Metric

        run_id = self._run_of(trial_id)
        batch: list[Metric] = []
        for step, values, stamp in epochs:
            if step <= self._last_step.get(run_id, 0):
                continue  # a retried trial re-reports epochs it had already logged
            if len(batch) + len(values) > MAX_METRICS_PER_BATCH:
                self._write_metrics(run_id, batch)
                batch = []
            batch += [Metric(k, v, stamp, step) for k, v in values.items()]
        ends = [Metric(k, v, stamp, 0) for k, (v, stamp) in (final or {}).items()]
        if len(batch) + len(ends) > MAX_METRICS_PER_BATCH:
            self._write_metrics(run_id, batch)
            batch = []
        self._write_metrics(run_id, batch, ends)

    def _write_metrics(self, run_id: str, batch: list[Any], ends: list[Any] = ()) -> None:
        """One ``log_batch`` of whole epochs (and the trial's final values ``ends``); a retry
        after a failure resumes after them."""
        if batch or ends:
            self.client.log_batch(run_id, metrics=[*batch, *ends])
        if batch:
            self._last_step[run_id] = max(self._last_step.get(run_id, 0), batch[-1].step)

    def close_trial(
        self,
        trial_id: str,
        status: str,
        final_metrics: Mapping[str, float] | None = None,
        error: str | None = None,
    ) -> None:
        """Final metrics (step 0), the error of a failed trial, and the run's end status; the
        epochs not sent yet go in the same write."""
        stamp = int(time.time() * 1000)
        final = dict(final_metrics or {})
        with self._epochs_lock:  # held while queueing, as in _send_epochs
            epochs = self._unsent.pop(trial_id, [])
            self._last_sent.pop(trial_id, None)
            self._queue(
                f"close trial {trial_id}",
                "close_trial",
                trial_id,
                status,
                final,
                error,
                stamp,
                epochs,
            )

    def _close_trial(
        self,
        trial_id: str,
        status: str,
        final: dict[str, float],
        error: str | None,
        stamp: int,
        epochs: list[tuple[int, dict[str, float], int]] | None = None,
    ) -> None:
        from mlflow.entities import Metric, RunTag

        if epochs:
            self._log_epochs(trial_id, epochs, final={k: (v, stamp) for k, v in final.items()})
            final = {}
        run_id = self._run_of(trial_id)
        tags = [RunTag(TAG_ERROR, error[:5000])] if error else []
        metrics = [Metric(k, v, stamp, 0) for k, v in final.items()]
        if metrics or tags:
            self.client.log_batch(run_id, metrics=metrics, tags=tags)
        if error:
            self.client.log_text(run_id, error, "error.txt")
        self.client.set_terminated(run_id, status=status)
