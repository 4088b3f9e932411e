"""One sweep, start to finish: preflight, parent run, Tune trials, registration, summary."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from sweeps import storage
from sweeps.preflight import Prepared, preflight
from sweeps.ray_runtime import init_ray, stop_local_ray_in_background
from sweeps.sagemaker import model_registry_note
from sweeps.spec import SweepSpec
from sweeps.tracking import (
    TAG_DATA_SHA,
    TAG_GIT_COMMIT,
    SweepTracker,
    make_client,
    redact_uri,
    trial_run_name,
)

if TYPE_CHECKING:
    from ray.tune import ResultGrid

    from sweeps.registrar import Registrar
    from sweeps.registry import Registration
    from trainable.contract import Objective

STATE_FILE = "sweep-state.json"
TOP_N = 5


@dataclass
class TrialSummary:
    """One trial's outcome as shown in the final table."""

    number: int
    trial_id: str
    status: str
    best_value: float | None
    best_epoch: int | None
    epochs: int
    config: dict[str, Any]
    run_id: str | None = None
    history: list[float] = field(default_factory=list)  # the metric, epoch by epoch


@dataclass
class SweepOutcome:
    """What a finished sweep produced and where to find it."""

    spec: SweepSpec
    run_name: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    storage_path: str
    trials: list[TrialSummary]
    registration: Registration | None
    wall_s: float
    registry_note: str | None = None
    rejected_writes: list[str] = field(default_factory=list)  # MLflow calls the server refused

    @property
    def best(self) -> TrialSummary | None:
        top = self.top(1)
        return top[0] if top else None

    def top(self, n: int = TOP_N) -> list[TrialSummary]:
        """The ``n`` best trials by the sweep's objective, best first."""
        key = self.spec.objective.key
        scored = [t for t in self.trials if t.best_value is not None]
        return sorted(scored, key=lambda t: (key(t.best_value), t.number))[:n]


def run_sweep(
    spec: SweepSpec, console: Console | None = None, verbose: bool = False
) -> SweepOutcome:
    """Run the sweep described by ``spec`` and register its best model.

    Raises:
        UserError: (before any trial) the spec, data, tracking store or storage is unusable.
    """
    console = console or Console(stderr=True)
    started = time.monotonic()
    prepared = preflight(spec)
    run_name = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    console.print(
        f"sweep [bold]{run_name}[/]: {spec.search.num_samples} trials, "
        f"{spec.search.max_concurrent} at a time; starting Ray and MLflow..."
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Ray's start-up and MLflow's (a new local store migrates its schema) take seconds each.
        opening = pool.submit(_open_tracking, prepared, run_name)
        init_ray(verbose)
        tracker = opening.result()
    console.print(
        f"MLflow run {tracker.parent_run_id} in experiment '{spec.experiment_name}' "
        f"at {redact_uri(prepared.tracking_uri)}"
    )
    return _drive(prepared, tracker, run_name, console, verbose, started)


def _open_tracking(prepared: Prepared, run_name: str) -> SweepTracker:
    """The experiment and the sweep's parent run, and the state file that finds them again."""
    client = make_client(prepared.tracking_uri)
    tracker = SweepTracker.start(
        client,
        prepared.spec,
        prepared.dataset,
        run_name,
        storage.join(prepared.storage_path, run_name),
    )
    _save_state(prepared, run_name, tracker)
    return tracker


def resume_sweep(
    target: str, console: Console | None = None, verbose: bool = False
) -> SweepOutcome:
    """Continue an interrupted sweep (``Tuner.restore``) in the same MLflow parent run.

    ``target`` is the sweep's storage folder (as printed by ``sweep run``), or a sweep run
    name / spec name looked up under ``./sweep-results``. Finished trials are kept; trials that
    were running resume from their last checkpoint; child runs are reused, never duplicated.

    Raises:
        UserError: no such sweep, or its data, tracking store or storage is unusable now.
    """
    from sweeps.errors import PreflightError
    from sweeps.spec import validate_spec

    console = console or Console(stderr=True)
    started = time.monotonic()
    folder = locate_sweep(target)
    state = json.loads(storage.read_text(storage.join(folder, STATE_FILE)) or "{}")
    spec = validate_spec(state["spec"], source=f"{folder}/{STATE_FILE}").at(
        state.get("spec_folder")
    )
    prepared = preflight(spec)
    client = make_client(prepared.tracking_uri)
    tracker = SweepTracker.reopen(client, state["parent_run_id"])
    recorded = tracker.parent_tags.get(TAG_DATA_SHA)
    if recorded and recorded != prepared.dataset.sha256:
        raise PreflightError(
            f"data.source: {spec.data.source} changed since the sweep started "
            f"(sha256 {prepared.dataset.sha256[:12]}, was {recorded[:12]}); start a new sweep"
        )
    tracker.mark_running()
    console.print(
        f"resuming sweep [bold]{state['run_name']}[/] from {folder}; MLflow run "
        f"{tracker.parent_run_id} at {redact_uri(prepared.tracking_uri)}"
    )
    return _drive(prepared, tracker, state["run_name"], console, verbose, started, folder)


def locate_sweep(target: str) -> str:
    """The storage folder of the sweep ``target`` names (see :func:`resume_sweep`)."""
    from sweeps.errors import UserError

    candidates = [target] if storage.is_remote(target) else []
    if not candidates:
        path = Path(target).expanduser()
        candidates = [str(path.resolve())]
        root = Path("sweep-results").resolve()
        if root.is_dir() and "/" not in target:
            candidates.append(str(root / target))
            named = sorted(p for p in root.glob(f"{target}-*") if (p / STATE_FILE).is_file())
            if named:
                candidates.append(str(named[-1]))  # names end in a timestamp: newest last
    for candidate in candidates:
        if storage.read_text(storage.join(candidate, STATE_FILE)) is not None:
            return candidate.rstrip("/")
    raise UserError(
        f"resume: no sweep found at {target!r}; give the sweep's folder (with {STATE_FILE}), "
        "e.g. ./sweep-results/abalone-20261127-163630, or a sweep name under ./sweep-results"
    )


def _drive(
    prepared: Prepared,
    tracker: SweepTracker,
    run_name: str,
    console: Console,
    verbose: bool,
    started: float,
    restore_from: str | None = None,
) -> SweepOutcome:
    """Trials, summary, registration and the parent run's end status, for a new or resumed
    sweep."""
    from sweeps.registrar import Registrar

    spec = prepared.spec
    status = "FAILED"
    registrar = Registrar(prepared.tracking_uri, spec.trainable, spec.folder)
    try:
        grid = _tune(prepared, run_name, tracker, console, verbose, registrar, restore_from)
        stop_local_ray_in_background()  # nothing below needs Ray
        trials = _summarise(grid, tracker, spec.objective)
        tracker.close_stale_children({t.trial_id for t in trials if t.status == "ERROR"})
        registering = _submit_registration(prepared, grid, trials, tracker, console, registrar)
        with console.status("writing the summary plots" + (", registering" if registering else "")):
            _log_summary_artifacts(spec, trials, tracker)  # while the registrar works
            registration = registrar.result() if registering else None
        registry_note = model_registry_note(prepared.tracking_uri) if registration else None
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        registrar.close()
        tracker.end(status)
    return SweepOutcome(
        spec=spec,
        run_name=run_name,
        tracking_uri=prepared.tracking_uri,
        experiment_id=tracker.experiment_id,
        parent_run_id=tracker.parent_run_id,
        storage_path=storage.join(prepared.storage_path, run_name),
        trials=trials,
        registration=registration,
        wall_s=time.monotonic() - started,
        registry_note=registry_note,
        rejected_writes=list(tracker.writer.dropped),
    )


def _save_state(prepared: Prepared, run_name: str, tracker: SweepTracker) -> None:
    """Enough to resume this sweep from its storage folder: its MLflow parent run and the spec
    with storage and tracking URI resolved (a resume may start from another folder)."""
    spec = prepared.spec.to_dict()
    spec["storage"] = prepared.storage_path
    spec["tracking"] = {"uri": prepared.tracking_uri}
    state = {
        "run_name": run_name,
        "spec_folder": prepared.spec.folder,
        "parent_run_id": tracker.parent_run_id,
        "experiment_id": tracker.experiment_id,
        "tracking_uri": prepared.tracking_uri,
        "spec": spec,
    }
    path = storage.join(prepared.storage_path, run_name, STATE_FILE)
    storage.write_text(path, json.dumps(state, indent=2))


def _tune(
    prepared: Prepared,
    run_name: str,
    tracker: SweepTracker,
    console: Console,
    verbose: bool,
    registrar: Registrar,
    restore_from: str | None = None,
) -> ResultGrid:
    from ray import tune

    from sweeps.live_callbacks import attach, detach
    from sweeps.preflight import ship_local_modules
    from sweeps.progress import SweepProgress
    from sweeps.registrar import StartWhenCoresFree
    from sweeps.search import stop_epochs
    from sweeps.trial_logger import MlflowTrialLogger
    from trainable.contract import TrialSetup, run_trial

    spec = prepared.spec
    search = spec.search
    init_ray(verbose)
    # Tune's default CSV and TensorBoard loggers cost the driver CPU on every reported epoch
    # while the trials compete for the same cores; the MLflow runs are the record.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    ship_local_modules()
    setup = TrialSetup(
        family=prepared.family,
        data=prepared.splits.without_test(),
        objective=spec.objective,
        stop_epochs=tuple(stop_epochs(spec)),
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, setup=setup),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    already_done = tracker.finished_trials() if restore_from else 0
    progress = SweepProgress(
        search.num_samples, spec.objective, console=console, already_done=already_done
    )
    warm_up = StartWhenCoresFree(
        registrar, search.num_samples, search.max_concurrent, already_done=already_done
    )
    if restore_from:
        # Trials that were running resume from their checkpoints; failed ones stay failed.
        tuner = tune.Tuner.restore(
            restore_from, trainable=trainable, resume_unfinished=True, resume_errored=False
        )
    else:
        tuner = _new_tuner(prepared, run_name, trainable, verbose)
    attach(run_name, [MlflowTrialLogger(tracker), progress, warm_up])
    try:
        with progress:
            return tuner.fit()
    finally:
        detach(run_name)


def _new_tuner(prepared: Prepared, run_name: str, trainable: Any, verbose: bool) -> Any:
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from sweeps.live_callbacks import LiveCallbacks
    from sweeps.search import make_scheduler, make_searcher, param_space
    from sweeps.trial_logger import trial_number

    spec = prepared.spec
    search = spec.search
    return tune.Tuner(
        trainable,
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.objective.metric,
            mode=spec.objective.mode,
            search_alg=make_searcher(spec),
            scheduler=make_scheduler(spec),
            num_samples=search.num_samples,
            time_budget_s=search.time_budget_s,
            reuse_actors=True,
            trial_name_creator=lambda t: trial_run_name(trial_number(t)),
            trial_dirname_creator=lambda t: trial_run_name(trial_number(t)),
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=prepared.storage_path,
            # result.json only (the trial histories read back after the sweep); _tune keeps
            # Tune from adding its CSV and TensorBoard loggers besides.
            callbacks=[LiveCallbacks(run_name), JsonLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=search.max_failures),
            # The trainable's newest checkpoint holds its best model so far; keep only that.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=1 if verbose else 0,
        ),
    )


def _summarise(grid: ResultGrid, tracker: SweepTracker, objective: Objective) -> list[TrialSummary]:
    tracker.flush()
    trials = []
    for result in grid:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or os.path.basename(result.path)
        history = result.metrics_dataframe
        best_value = best_epoch = None
        curve: list[float] = []
        if history is not None and objective.metric in history:
            column = history[objective.metric].dropna()
            curve = [float(v) for v in column]
            if len(column):
                idx = column.idxmin() if objective.mode == "min" else column.idxmax()
                best_value = float(column[idx])
                if "epoch" in history:
                    best_epoch = int(history.loc[idx, "epoch"])
        trials.append(
            TrialSummary(
                number=_number_from_path(result.path),
                trial_id=trial_id,
                status="ERROR" if result.error else "TERMINATED",
                best_value=best_value,
                best_epoch=best_epoch,
                epochs=int(metrics.get("epoch", 0) or 0),
                config=dict(result.config or {}),
                run_id=tracker.child_run_id(trial_id),
                history=curve,
            )
        )
    return sorted(trials, key=lambda t: t.number)


def _log_summary_artifacts(
    spec: SweepSpec, trials: list[TrialSummary], tracker: SweepTracker
) -> None:
    """Results table and plots (Optuna's, from the trials) as the parent run's ``summary/``."""
    import tempfile

    from sweeps.summary import COMPLETE, FAIL, TrialRecord, write_summary

    records = [
        TrialRecord(
            number=t.number,
            params={k: v for k, v in t.config.items() if k in spec.searched},
            value=t.best_value,
            state=COMPLETE if t.status != "ERROR" and t.best_value is not None else FAIL,
            history=t.history,
            run_id=t.run_id,
        )
        for t in trials
    ]
    with tempfile.TemporaryDirectory() as folder:
        write_summary(records, spec, Path(folder))
        tracker.client.log_artifacts(tracker.parent_run_id, folder, "summary")


def _number_from_path(path: str) -> int:
    tail = os.path.basename(path.rstrip("/"))
    digits = tail.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else 0


def _submit_registration(
    prepared: Prepared,
    grid: ResultGrid,
    trials: list[TrialSummary],
    tracker: SweepTracker,
    console: Console,
    registrar: Registrar,
) -> bool:
    """Hand the best trial's checkpoint to ``registrar``; False if there is nothing to
    register."""
    from sweeps.registrar import RegistrationJob
    from sweeps.registry import Lineage

    spec = prepared.spec
    objective = spec.objective
    try:
        best = grid.get_best_result(objective.metric, objective.mode, scope="all")
    except RuntimeError:
        console.print("[red]no trial reported a result; nothing to register[/]")
        return False
    checkpoint = best.checkpoint
    if checkpoint is None:
        console.print("[red]the best trial left no checkpoint; nothing to register[/]")
        return False
    trial_id = best.metrics["trial_id"]
    summary = next(t for t in trials if t.trial_id == trial_id)
    tracker.log_summary(
        {k: v for k, v in summary.config.items() if k in spec.searched},
        {f"best_{objective.metric}": summary.best_value},
    )
    console.print("registering the best trial's model (evaluating on the test split)...")
    lineage = Lineage(
        sweep_run_id=tracker.parent_run_id,
        trial_run_id=tracker.child_run_id(trial_id),
        data_sha256=prepared.dataset.sha256,
        spec_sha256=spec.sha256,
        checkpoint_uri=storage.as_uri(prepared.storage_path, checkpoint.path),
        git_commit=tracker.parent_tags.get(TAG_GIT_COMMIT),
    )
    registrar.submit(
        RegistrationJob(
            checkpoint_dir=storage.local_folder(  # S3 checkpoints are downloaded, once
                checkpoint.filesystem, checkpoint.path, registrar.folder("checkpoint")
            ),
            test=prepared.splits.test,
            schema=prepared.schema,
            lineage=lineage,
            model_name=spec.model_name,
            alias=spec.register.alias,
            champion=spec.champion_objective,
        )
    )
    return True
