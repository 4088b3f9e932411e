"""The ``sweep`` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from sweeps.errors import UserError
from trainable.families import default_spec, shipped_specs

if TYPE_CHECKING:
    from sweeps.results import SweepOutcome

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class _Commands(TyperGroup):
    """The CLI's one error boundary: a :class:`UserError` from any command is printed as one
    line per problem, with exit code 2 and no traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from sweeps.environment import set_defaults

        set_defaults()
        try:
            return super().invoke(ctx)
        except UserError as exc:
            for line in exc.problems:
                err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
            raise typer.Exit(code=2) from None


app = typer.Typer(
    name="sweep",
    cls=_Commands,
    help=(
        "Ray Tune + Optuna hyperparameter sweeps of TensorFlow models, tracked in MLflow "
        "(one parent run per sweep, a nested run per trial) with the best model registered."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # reflows docstring paragraphs
    epilog=(
        "Examples: `sweep run` (the default sweep, local) · "
        "`sweep run breast_cancer` (a shipped spec by name) · "
        "`sweep run my.yaml --set search.num_samples=8` · `sweep resume abalone` · "
        "`sweep ls` · `sweep best` · "
        "`mlflow ui --backend-store-uri sqlite:///$PWD/mlflow.db`"
    ),
)
SpecArg = Annotated[
    Path | None,
    typer.Argument(
        help="Sweep spec (YAML), or the name of a shipped one "
        f"({', '.join(shipped_specs())}). Default: {default_spec().stem}.",
        show_default=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY.PATH=VALUE",
        help="Override a spec field, e.g. --set search.num_samples=8 (repeatable; YAML values).",
    ),
]

AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The cluster's Ray Jobs API (its dashboard), e.g. http://127.0.0.1:8265 while "
        "`ray dashboard cluster.yaml` runs. Default: $RAY_ADDRESS, else http://127.0.0.1:8265.",
        show_default=False,
    ),
]
JobArg = Annotated[
    str,
    typer.Argument(
        help="The Ray job id `sweep submit` printed (raysubmit_...).", show_default=False
    ),
]


@app.command()
def validate(spec: SpecArg = None, set_: SetOpt = None) -> None:
    """Check a spec and all a sweep needs, without training.

    Check a spec and everything a sweep needs (data, tracking store, storage, trainable) without
    training. Exits 2 and names each problem if something is wrong.
    """
    from sweeps.config.spec import load_spec
    from sweeps.running.preflight import preflight

    prepared = preflight(load_spec(spec, set_))
    s = prepared.spec
    out.print(f"[green]ok[/] spec '{s.name}' is valid")
    out.print(
        f"  data      {prepared.dataset.source}: {len(prepared.dataset.frame)} rows "
        f"(train {len(prepared.splits.train)} / val {len(prepared.splits.val)} / "
        f"test {len(prepared.splits.test)}), sha256 {prepared.dataset.sha256[:12]}"
    )
    schema = prepared.schema
    kinds = ", ".join(
        f"{c.name} ({'categorical: ' + '/'.join(c.values) if c.categorical else 'numeric'})"
        for c in schema.features[:6]
    )
    more = f", ... ({len(schema.features)} features)" if len(schema.features) > 6 else ""
    target = schema.target + (f" (classes: {', '.join(schema.classes)})" if schema.classes else "")
    out.print(f"  schema    {schema.task}: {target} from {kinds}{more}")
    out.print(f"  family    {s.trainable} (reports {', '.join(prepared.family.metrics) or '?'})")
    out.print(
        f"  search    {s.search.num_samples} trials over {', '.join(s.searched)}; "
        f"{s.objective.mode} {s.objective.metric}; champion by {s.champion_objective.metric}"
    )
    out.print(f"  tracking  {prepared.tracking_uri} (experiment '{s.experiment_name}')")
    out.print(f"  storage   {prepared.storage_path}")


VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show Ray Tune's and the trials' own logs.")
]


def _sweep_and_report(start: Callable[[], SweepOutcome], verbose: bool) -> None:
    """Run a sweep (new or resumed) and print its outcome; exit 1 if nothing was registered
    (unless ``register.enabled`` is false), 128 + the signal's number if a signal stopped it
    (130 for Ctrl-C)."""
    from sweeps.quiet import quiet_libraries
    from sweeps.registration.registrar import RegistrationFailed
    from sweeps.running.stopping import SweepInterrupted

    if not verbose:
        quiet_libraries()
    from sweeps.views.outcome import print_outcome

    try:
        outcome = start()
    except KeyboardInterrupt as exc:
        stopped = exc if isinstance(exc, SweepInterrupted) else SweepInterrupted(2)
        _print_notes(exc)
        if stopped.resume_hint:
            err.print(
                f"[yellow]stopped[/] ({stopped}): unfinished trials and the sweep's parent run are "
                f"marked KILLED; nothing was registered. Continue it with: {stopped.resume_hint}"
            )
        else:
            err.print(f"[yellow]stopped[/] ({stopped}) before any trial ran; nothing to resume")
        raise typer.Exit(code=stopped.exit_code) from None
    except RegistrationFailed as exc:
        err.print(f"[bold red]error:[/] {escape(exc.brief)}")
        err.print("the trials are recorded; the sweep's parent run ends FAILED")
        _print_notes(exc)
        raise typer.Exit(code=1) from None
    print_outcome(outcome, out)
    if outcome.registration is None and outcome.spec.register.enabled:
        raise typer.Exit(code=1)


def _print_notes(exc: BaseException) -> None:
    """The notes the sweep added to ``exc`` (what MLflow has not taken yet), as warnings."""
    for note in getattr(exc, "__notes__", ()):
        err.print(f"[yellow]warning:[/] {escape(note)}")


@app.command()
def run(spec: SpecArg = None, set_: SetOpt = None, verbose: VerboseOpt = False) -> None:
    """Run a sweep and register its best model.

    Run a sweep: Optuna-suggested trials on Ray Tune, each a nested MLflow run; the best model
    is evaluated on the test split and registered.
    """

    def start() -> SweepOutcome:
        from sweeps.config.spec import load_spec
        from sweeps.running.sweep import run_sweep

        return run_sweep(load_spec(spec, set_), console=err, verbose=verbose)

    _sweep_and_report(start, verbose)


@app.command()
def resume(
    sweep: Annotated[
        str,
        typer.Argument(
            help="The sweep's storage folder as printed by `sweep run` (local or s3://), or a "
            "sweep name under ./sweep-results (the newest sweep of that name).",
            show_default=False,
        ),
    ],
    verbose: VerboseOpt = False,
) -> None:
    """Continue an interrupted sweep in the same MLflow parent run.

    Continue an interrupted sweep in the same MLflow parent run: finished trials are kept,
    running ones resume from their last checkpoint, child runs are reused, not duplicated.
    """

    def start() -> SweepOutcome:
        from sweeps.running.sweep import resume_sweep

        return resume_sweep(sweep, console=err, verbose=verbose)

    _sweep_and_report(start, verbose)


@app.command()
def sync(
    sweep: Annotated[
        str,
        typer.Argument(
            help="The sweep's storage folder as printed by `sweep run`, or a sweep name under "
            "./sweep-results.",
            show_default=False,
        ),
    ],
) -> None:
    """Send the MLflow writes a sweep could not send.

    Send the MLflow writes a sweep's driver kept on disk because the tracking server did not
    take them (an outage that outlasted the sweep, or a driver that died during one). `sweep
    resume` does the same before it continues.
    """
    from sweeps.running.sync import sync_sweep

    sent = sync_sweep(sweep, console=err)
    out.print(f"sent {sent} MLflow writes" if sent else "nothing to send")


ExperimentOpt = Annotated[
    str | None,
    typer.Option(
        "--experiment",
        "-e",
        help="MLflow experiment. Default: the default spec's experiment.",
        show_default=False,
    ),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<working folder>/mlflow.db (as `sweep run`).",
        show_default=False,
    ),
]
SweepArg = Annotated[
    str | None,
    typer.Argument(
        help="The sweep: its parent run name (abalone-20261127-163630-3fa2), run id, or spec name "
        "(its newest sweep). Default: the newest sweep in the experiment.",
        show_default=False,
    ),
]


@app.command("ls")
def ls(
    experiment: ExperimentOpt = None,
    tracking_uri: TrackingUriOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N sweeps.")] = 20,
) -> None:
    """List past sweeps (MLflow parent runs): status, start, trials, best and test values."""
    from sweeps.views import tables as views

    views.print_sweeps(out, tracking_uri=tracking_uri, experiment=experiment, limit=limit)


@app.command()
def status(
    target: Annotated[
        str | None,
        typer.Argument(
            help="Sweep name, run id, or (for cluster jobs) a Ray job id. Default: the newest "
            "sweep in the experiment.",
            show_default=False,
        ),
    ] = None,
    experiment: ExperimentOpt = None,
    tracking_uri: TrackingUriOpt = None,
    address: AddressOpt = None,
) -> None:
    """Show a sweep's trials by state, best so far and elapsed time.

    A sweep's trials by state (running/finished/failed/killed of planned), best so far, elapsed
    time; read from MLflow, so it works for sweeps run elsewhere. Given a Ray job id from `sweep
    submit` (raysubmit_...) or --address: that job's state on the cluster.
    """
    from sweeps.cluster.submit import is_job_id
    from sweeps.views import tables as views

    if address or is_job_id(target):
        _job_status(target, address)
        return
    views.print_sweep_status(out, target, tracking_uri=tracking_uri, experiment=experiment)


@app.command()
def best(
    sweep: SweepArg = None,
    experiment: ExperimentOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Show a sweep's best trial and the model version registered from it.

    A sweep's best trial: hyperparameters, metrics, child run id, and the model version
    registered from the sweep with its aliases; with several objectives (search.metrics),
    the Pareto front too.
    """
    from sweeps.views import tables as views

    views.print_best(out, sweep, tracking_uri=tracking_uri, experiment=experiment)


@app.command()
def submit(
    spec: SpecArg = None,
    set_: SetOpt = None,
    address: AddressOpt = None,
    working_dir: Annotated[
        Path | None,
        typer.Option(
            "--working-dir",
            help="Folder sent to the cluster with the job; the spec must be inside it. "
            "Default: the current folder.",
            show_default=False,
        ),
    ] = None,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="Print the job id and return; do not follow the log."),
    ] = False,
    allow_local: Annotated[
        bool,
        typer.Option(
            "--allow-local",
            help="Run even if the spec keeps its MLflow store or storage on the head's disk "
            "(a one-node cluster you keep); refused otherwise.",
        ),
    ] = False,
) -> None:
    """Run a sweep on a Ray cluster as a Ray job.

    Run a sweep on a Ray cluster as a Ray job (`sweep run` on the head, with the current folder
    shipped along): the sweep goes on if this machine sleeps. Follows the job's log and exits
    non-zero if the job fails.
    """
    from sweeps.cluster import submit as jobs

    submission = jobs.submit_sweep(spec, set_, address, working_dir, allow_local)
    for warning in submission.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    job, at = submission.job_id, submission.address
    err.print(f"submitted job [bold]{job}[/] to {at}: {submission.entrypoint}")
    if no_wait:
        err.print(f"follow it: sweep logs {job} --follow --address {at}")
        out.print(job)
        return
    _follow(job, at)


@app.command()
def logs(
    job: JobArg,
    address: AddressOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")
    ] = False,
) -> None:
    """Print the log of a sweep submitted with `sweep submit`.

    Print the log of a sweep submitted with `sweep submit` (the driver's output on the cluster).
    """
    from sweeps.cluster import submit as jobs

    if follow:
        _follow(job, address)
        return
    sys.stdout.write(jobs.job_logs(address, job))


def _job_status(job: str | None, address: str | None) -> None:
    """Print what the cluster knows about a submitted sweep job."""
    from sweeps.cluster import submit as jobs

    if not job:
        raise UserError("status: give the job id `sweep submit` printed (raysubmit_...)")
    details = jobs.job_details(address, job)
    log = jobs.job_logs(address, job)
    for label, value in jobs.describe(details, log):
        out.print(f"{label:<10} {value}")


def _follow(job: str, address: str | None) -> None:
    """Stream a job's log to stdout until it ends; exit 1 unless it succeeded."""
    from sweeps.cluster import submit as jobs

    def write(chunk: str) -> None:
        sys.stdout.write(chunk)
        sys.stdout.flush()

    try:
        final = jobs.follow_logs(address, job, write)
    except KeyboardInterrupt:
        err.print(
            f"[yellow]detached[/]: job {job} goes on running on the cluster "
            f"(`sweep logs {job} --follow`; stop it with `ray job stop {job}`)"
        )
        raise typer.Exit(code=130) from None
    if str(final.status) != "SUCCEEDED":
        err.print(f"[bold red]job {job} {final.status}[/]: {jobs.first_line(final.message)}")
        raise typer.Exit(code=1)
    err.print(f"[green]job {job} SUCCEEDED[/]")


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="sweep")
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


def _exit(code: object) -> None:
    """Exit; after a sweep, skip the interpreter's teardown of Ray, MLflow and the rest (over
    a second, spent on nothing the user can see)."""
    from sweeps.running.ray_runtime import wait_for_ray_to_stop

    code = code if isinstance(code, int) else (0 if code is None else 1)
    wait_for_ray_to_stop()
    if not {"ray", "mlflow"} & sys.modules.keys():
        sys.exit(code)
    import logging

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()  # stop the local Ray this process started, as its atexit hook would
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
