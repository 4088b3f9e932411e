"""One sweep, start to finish: checks, the parent run and Ray, the trials, the summary
artifacts, the registration of the best model, the parent run's end. :func:`drive` reads top
to bottom."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console

from sweeps.cluster.sagemaker import model_registry_note
from sweeps.config.spec import SweepSpec
from sweeps.record.client import make_client, redact_uri
from sweeps.record.runs import (
    END_FLUSH_S,
    TAG_DATA_SHA,
    TAG_GIT_COMMIT,
    SweepTracker,
    trial_run_name,
)
from sweeps.results import ERROR, SweepOutcome, TrialRecord
from sweeps.running import resume, state_guard, storage
from sweeps.running.lease import Lease
from sweeps.running.preflight import Prepared, preflight
from sweeps.running.ray_runtime import init_ray, stop_local_ray_in_background
from sweeps.running.stopping import StopSignals, SweepInterrupted
from sweeps.running.sync import replay_unsent
from sweeps.running.trials import collect, run_trials
from sweeps.search.warm_start import warm_start_tags

#: Seconds a stopped sweep waits for queued MLflow writes before it ends its runs (SIGKILL
#: follows SIGTERM after ``RAY_JOB_STOP_WAIT_TIME_S``, which ``sweep submit`` sets to 30).
STOP_FLUSH_S = 10.0

if TYPE_CHECKING:
    from ray.tune import Checkpoint, Result, ResultGrid

    from sweeps.registration.job import Member
    from sweeps.registration.registrar import Registrar
    from sweeps.search.stop_rules import StopRules


@dataclass
class SweepRun:
    """A sweep being driven: what every step needs."""

    prepared: Prepared
    tracker: SweepTracker
    run_name: str
    console: Console
    verbose: bool
    started: float  # time.monotonic() when the command began
    stops: StopSignals  # Ctrl-C and SIGTERM while the sweep runs
    restore_from: str | None = None  # the storage folder of a resumed sweep
    registrar: Registrar = field(init=False)  # registers the best model in a child process
    stop_rules: StopRules | None = None  # search.stop, set when the trials start

    def __post_init__(self) -> None:
        from sweeps.registration.registrar import Registrar

        spec = self.prepared.spec
        self.registrar = Registrar(self.prepared.tracking_uri, spec.trainable, spec.folder)

    @property
    def spec(self) -> SweepSpec:
        return self.prepared.spec

    @property
    def folder(self) -> str:
        """The sweep's storage folder (Tune's experiment, the state file)."""
        return self.restore_from or storage.join(self.prepared.storage_path, self.run_name)


def run_sweep(
    spec: SweepSpec, console: Console | None = None, verbose: bool = False
) -> SweepOutcome:
    """Run the sweep described by ``spec`` and register its best model.

    Raises:
        UserError: (before any trial) the spec, data, tracking store or storage is unusable.
    """
    console = console or Console(stderr=True)
    with StopSignals(console.print) as stops, contextlib.ExitStack() as held:
        started = time.monotonic()
        prepared = preflight(spec)
        run_name = resume.new_run_name(spec.name)
        console.print(
            f"sweep [bold]{run_name}[/]: {spec.search.num_samples} trials, "
            f"{spec.search.max_concurrent} at a time; starting Ray and MLflow..."
        )
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Ray's start-up and MLflow's (a new local store migrates its schema) take seconds.
            opening = pool.submit(_open_parent_run, prepared, run_name)
            try:
                init_ray(verbose)
                stops.take_back()
            except BaseException as exc:
                _end_opened(opening, exc)
                raise
            tracker, lease = opening.result()
        held.callback(lease.release)
        console.print(
            f"MLflow run {tracker.parent_run_id} in experiment '{spec.experiment_name}' "
            f"at {redact_uri(prepared.tracking_uri)}"
        )
        return drive(SweepRun(prepared, tracker, run_name, console, verbose, started, stops))


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
    from sweeps.config.spec import validate_spec
    from sweeps.errors import PreflightError

    console = console or Console(stderr=True)
    with StopSignals(console.print) as stops, contextlib.ExitStack() as held:
        started = time.monotonic()
        folder = resume.locate_sweep(target)
        state = resume.load_state(folder)
        held.callback(Lease.take(folder).release)  # refused while the sweep's driver runs
        spec = validate_spec(state["spec"], source=f"{folder}/{resume.STATE_FILE}")
        spec.at(state.get("spec_folder"))
        prepared = preflight(spec)
        tracker = SweepTracker.reopen(
            make_client(prepared.tracking_uri), state["parent_run_id"], folder
        )
        replay_unsent(tracker, console, prepared.tracking_uri)
        recorded = tracker.parent_tags.get(TAG_DATA_SHA)
        if recorded and recorded != prepared.dataset.sha256:
            raise PreflightError(
                f"data.source: {spec.data.source} changed since the sweep started "
                f"(sha256 {prepared.dataset.sha256[:12]}, was {recorded[:12]}); start a new sweep"
            )
        # Read now: a replayed end of the previous driver may have just recorded it.
        tags = tracker.client.get_run(tracker.parent_run_id).data.tags
        unverified = state_guard.check(folder, tags.get(state_guard.TAG_STATE_DIGESTS))
        if unverified:
            console.print(f"[yellow]warning:[/] {unverified}")
        tracker.mark_running()
        console.print(
            f"resuming sweep [bold]{state['run_name']}[/] from {folder}; MLflow run "
            f"{tracker.parent_run_id} at {redact_uri(prepared.tracking_uri)}"
        )
        try:
            init_ray(verbose)
            stops.take_back()
        except BaseException as exc:
            tracker.end(*ending(exc))
            raise
        return drive(
            SweepRun(prepared, tracker, state["run_name"], console, verbose, started, stops, folder)
        )


def ending(exc: BaseException) -> tuple[str, str]:
    """The parent run's end status for a sweep ended by ``exc``, and the reason to record."""
    if isinstance(exc, KeyboardInterrupt):
        name = exc.args[0] if isinstance(exc, SweepInterrupted) else "SIGINT"
        return "KILLED", f"stopped by {name}"
    return "FAILED", f"{type(exc).__name__}: {exc}"


def _end_opened(opening: Future[tuple[SweepTracker, Lease]], exc: BaseException) -> None:
    """End the parent run ``opening`` created (if it did) as ``exc`` says."""
    with contextlib.suppress(Exception):
        _abandon(*opening.result(), exc)


def _abandon(tracker: SweepTracker, lease: Lease, exc: BaseException) -> None:
    """Give up the sweep folder and end the parent run as ``exc`` says, before any trial."""
    lease.release()
    tracker.end(*ending(exc))


def _open_parent_run(prepared: Prepared, run_name: str) -> tuple[SweepTracker, Lease]:
    """The sweep's folder (new, and leased to this driver), the experiment and the parent run,
    and the state file that finds them again."""
    folder = storage.join(prepared.storage_path, run_name)
    if storage.read_text(storage.join(folder, resume.STATE_FILE)) is not None:
        raise RuntimeError(f"{folder} already holds a sweep")  # never, with random suffixes
    lease = Lease.take(folder)
    try:
        tracker = SweepTracker.start(
            make_client(prepared.tracking_uri), prepared.spec, prepared.dataset, run_name, folder
        )
    except BaseException:
        lease.release()
        raise
    spec = prepared.spec.to_dict()
    spec["storage"] = prepared.storage_path
    spec["tracking"] = {"uri": prepared.tracking_uri}
    try:
        resume.save_state(
            prepared.storage_path,
            run_name,
            spec,
            prepared.spec.folder,
            tracker.parent_run_id,
            tracker.experiment_id,
            prepared.tracking_uri,
        )
    except BaseException as exc:
        _abandon(tracker, lease, exc)
        raise
    return tracker, lease


def drive(run: SweepRun) -> SweepOutcome:
    """Trials, summary artifacts, registration and the parent run's end status, for a new or resumed
    sweep whose parent run is open and whose Ray is up."""
    from sweeps.search.stop_rules import TAG_STOP_REASON, end_reason

    prepared, tracker, registrar = run.prepared, run.tracker, run.registrar
    spec = prepared.spec
    status, reason, failure, unsent = "FAILED", None, None, []
    end_tags: dict[str, str] = {}
    prior = None if run.restore_from else prepared.prior  # a resumed sweep learned already
    if prior is not None:
        run.console.print(prior.summary())
        tracker.tag_parent(warm_start_tags(prior))
    scratch = tempfile.TemporaryDirectory(prefix="sweep-summary-")  # without a journal
    summary = tracker.artifacts_folder("summary") or scratch.name  # until MLflow took it
    try:
        with run.stops.trials():
            grid = run_trials(run)
        stopped_early = bool(run.stop_rules and run.stop_rules.reason) or bool(
            spec.search.time_budget_s
        )
        stop_local_ray_in_background(wait=stopped_early)  # nothing below needs Ray
        trials = collect(grid, tracker, spec.objective, [o.metric for o in spec.search.objectives])
        stop_reason = end_reason(
            run.stop_rules,
            spec.search,
            len(trials),
            sum(t.complete for t in trials),
            time.monotonic() - run.started,
        )
        end_tags[TAG_STOP_REASON] = stop_reason
        tracker.close_stale_children({t.trial_id for t in trials if t.status == ERROR})
        registering = _hand_over_best(run, grid, trials)
        doing = "writing the summary plots" + (", registering" if registering else "")
        with run.console.status(doing):
            _log_summary_artifacts(run, trials, summary)  # while the registrar works
            registration = registrar.result() if registering else None
        registry_note = model_registry_note(prepared.tracking_uri) if registration else None
        status = "FINISHED"
    except KeyboardInterrupt as exc:
        status, reason = ending(exc)
        # Trials stopped mid-training: KILLED, and continued by `sweep resume`.
        tracker.close_stale_children(set(), status="KILLED")
        signum = exc.signum if isinstance(exc, SweepInterrupted) else signal.SIGINT
        failure = SweepInterrupted(signum, f"sweep resume {run.folder}")
        raise failure from None
    except BaseException as exc:
        status, reason, failure = *ending(exc), exc
        raise
    finally:
        registrar.close()
        unsent = tracker.end(
            status,
            reason,
            STOP_FLUSH_S if status == "KILLED" else END_FLUSH_S,
            tags={**_state_record(run.folder), **end_tags},
        )
        scratch.cleanup()
        if unsent and failure is not None:
            failure.add_note(_unsent_note(run, unsent))
    return SweepOutcome(
        spec=spec,
        run_name=run.run_name,
        tracking_uri=prepared.tracking_uri,
        experiment_id=tracker.experiment_id,
        parent_run_id=tracker.parent_run_id,
        storage_path=run.folder,
        trials=trials,
        registration=registration,
        wall_s=time.monotonic() - run.started,
        registry_note=registry_note,
        rejected_writes=list(tracker.writer.dropped),
        unsent_note=_unsent_note(run, unsent) if unsent else None,
        stop_reason=stop_reason,
        warm_start=prior.summary() if prior is not None else None,
    )


def _state_record(folder: str) -> dict[str, str]:
    """The digests of Tune's state files as this driver leaves them (see state_guard)."""
    try:
        return {state_guard.TAG_STATE_DIGESTS: state_guard.record(folder)}
    except Exception:  # noqa: BLE001 - storage unreachable: a later resume cannot verify
        return {}


def _unsent_note(run: SweepRun, unsent: list[str]) -> str:
    """What is still unsent, where it is kept and how to send it (a sweep's last line)."""
    spool = run.tracker.spool.path if run.tracker.spool else "memory only"
    return (
        f"{len(unsent)} MLflow writes are not sent yet ({unsent[0]} ... {unsent[-1]}): "
        f"{redact_uri(run.prepared.tracking_uri)} did not take them. They are kept in {spool}; "
        f"send them once it is back: sweep sync {run.folder}"
    )


def _log_summary_artifacts(run: SweepRun, trials: list[TrialRecord], folder: str) -> None:
    """Results table and plots (Optuna's, from the trials), written to ``folder`` and queued
    as the parent run's ``summary/``."""
    from pathlib import Path

    from sweeps.record.artifacts import write_summary

    write_summary(trials, run.spec, Path(folder))
    run.tracker.log_artifacts(folder, "summary")


def _hand_over_best(run: SweepRun, grid: ResultGrid, trials: list[TrialRecord]) -> bool:
    """Record the selected trial (:mod:`sweeps.registration.selection`: ``register.select``,
    by default the best by the search metric) on the parent run and hand its checkpoint to the
    registrar; False if there is nothing to register or ``register.enabled`` is false (the
    parent run is tagged why)."""
    from sweeps.registration.job import Member, RegistrationJob
    from sweeps.registration.registry import Lineage
    from sweeps.registration.selection import TAG_NOT_REGISTERED, select_trial

    spec, tracker, prepared = run.spec, run.tracker, run.prepared
    objective = spec.objective
    selection = select_trial(trials, spec)  # register.select; default: the best by the metric
    record = selection.trial
    best = next((r for r in grid if record and _trial_id_of(r) == record.trial_id), None)
    checkpoint = best.checkpoint if best is not None else None
    if record is None or checkpoint is None:
        note = selection.note or "the selected trial left no checkpoint: nothing registered"
        run.console.print(f"[red]{note}[/]")
        tracker.tag_parent({TAG_NOT_REGISTERED: note})
        return False
    trial_id = record.trial_id
    if spec.register.select is not None or len(spec.search.objectives) > 1:
        run.console.print(f"selected {trial_run_name(record.number)}: {selection.rule}")
    tracker.log_best(
        {k: v for k, v in record.config.items() if k in spec.searched},
        {
            **{f"best_{k}": v for k, v in record.values.items()},
            f"best_{objective.metric}": record.best_value,
        },
    )
    if not spec.register.enabled:
        note = f"register.enabled is false: {trial_run_name(record.number)} is not registered"
        run.console.print(note)
        tracker.tag_parent({TAG_NOT_REGISTERED: note})
        return False
    size = spec.register.ensemble
    what = f"an ensemble of the best {size} trials' models" if size else "the best trial's model"
    run.console.print(f"registering {what} (evaluating on the test split)...")
    lineage = Lineage(
        sweep_run_id=tracker.parent_run_id,
        trial_run_id=tracker.child_run_id(trial_id),
        data_sha256=prepared.dataset.sha256,
        spec_sha256=spec.sha256,
        checkpoint_uri=storage.as_uri(prepared.storage_path, checkpoint.path),
        git_commit=tracker.parent_tags.get(TAG_GIT_COMMIT),
    )
    checkpoint_dir = storage.local_folder(  # S3 checkpoints are downloaded, once
        checkpoint.filesystem, checkpoint.path, run.registrar.folder("checkpoint")
    )
    members, note = (), None
    if size:
        best_member = Member(
            record.number, lineage.trial_run_id, checkpoint_dir, lineage.checkpoint_uri
        )
        members, note = _ensemble_members(run, grid, trials, record, best_member, size)
    run.registrar.submit(
        RegistrationJob(
            checkpoint_dir=checkpoint_dir,
            test=prepared.splits.test,
            schema=prepared.schema,
            lineage=lineage,
            model_name=spec.model_name,
            alias=spec.register.alias,
            champion=spec.champion_objective,
            members=members,
            note=note,
        )
    )
    return True


def _trial_id_of(result: Result) -> str | None:
    """The Tune trial id of one result of the grid."""
    return (result.metrics or {}).get("trial_id")


def _ensemble_members(
    run: SweepRun,
    grid: ResultGrid,
    trials: list[TrialRecord],
    record: TrialRecord,
    best: Member,
    size: int,
) -> tuple[tuple[Member, ...], str | None]:
    """``register.ensemble``: the members after ``best`` with their checkpoints made local (see
    :func:`~sweeps.registration.members.choose_members`), and the note if they are fewer."""
    from sweeps.registration.members import choose_members

    storage_path = run.prepared.storage_path
    checkpoints = {r.metrics.get("trial_id"): r.checkpoint for r in grid if r.metrics}

    def fetch(checkpoint: Checkpoint, number: int) -> tuple[str, str]:
        scratch = run.registrar.folder(f"checkpoint-{number:04d}")
        folder = storage.local_folder(checkpoint.filesystem, checkpoint.path, scratch)
        return folder, storage.as_uri(storage_path, checkpoint.path)

    return choose_members(best, record, trials, checkpoints, size, run.spec.objective, fetch)
