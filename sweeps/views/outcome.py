"""The end of ``sweep run`` / ``resume`` on the terminal: top trials, where the MLflow record
is, the registered version and what happened to its alias."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from sweeps.cluster.sagemaker import parse_arn
from sweeps.record.client import is_local_store, redact_uri

if TYPE_CHECKING:
    from sweeps.registration.registry import Registration
    from sweeps.results import SweepOutcome


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def ensemble_line(reg: Registration) -> str:
    """``ensemble of 3 trials (#3, #7, #1): <metric> 2.0300 vs single best 2.0800``."""
    trials = ", ".join(f"#{n}" for n in reg.members)
    single = reg.single_metrics.get(reg.metric)
    versus = f" vs single best {single:.4f}" if single is not None else ""
    return f"ensemble of {len(reg.members)} trials ({trials}): {reg.metric} {reg.value:.4f}{versus}"


def print_front(outcome: SweepOutcome, console: Console) -> None:
    """With several objectives, the Pareto front (one line per member, best primary value
    first, the registered trial marked); then why nothing was registered, if nothing was."""
    from sweeps.registration.selection import select_trial
    from sweeps.search.pareto import objective_values, pareto_front

    spec = outcome.spec
    objectives = spec.search.objectives
    selection = select_trial(outcome.trials, spec)
    if len(objectives) > 1:
        front = pareto_front(outcome.trials, objectives)
        goals = ", ".join(f"{o.metric} ({o.mode})" for o in objectives)
        complete = sum(t.complete for t in outcome.trials)
        console.print(f"Pareto front of {goals}: {len(front)} of {complete} complete trials")
        chosen = selection.trial.number if selection.trial and outcome.registration else None
        for t in front:
            values = objective_values(t, objectives) or ()  # a front member has them all
            shown = "  ".join(
                f"{o.metric} {_value(v)}" for o, v in zip(objectives, values, strict=True)
            )
            mark = "  <- registered" if t.number == chosen else ""
            params = " ".join(f"{n}={_fmt(t.config.get(n, ''))}" for n in spec.searched)
            console.print(f"  trial-{t.number:04d}  {shown}  {params}{mark}")
    if selection.trial is None and selection.note:
        console.print(f"[yellow]{selection.note}[/]")


def _value(value: float) -> str:
    """A metric value: whole numbers (a parameter count) in full, others to 4 digits."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def print_outcome(outcome: SweepOutcome, console: Console) -> None:
    """Top trials table, the MLflow experiment and parent run, the registered version."""
    spec = outcome.spec
    metric = spec.objective.metric
    searched = list(spec.searched)
    table = Table(title=f"Top trials of {outcome.run_name} (by best {metric})")
    table.add_column("trial")
    table.add_column(f"best {metric}", justify="right")
    table.add_column("at epoch", justify="right")
    table.add_column("hyperparameters")
    for t in outcome.top():
        table.add_row(
            f"trial-{t.number:04d}",
            f"{t.best_value:.4f}",
            f"{t.best_epoch or '-'}/{t.epochs}",
            " ".join(f"{name}={_fmt(t.config.get(name, ''))}" for name in searched),
        )
    console.print(table)
    failed = sum(1 for t in outcome.trials if t.status == "ERROR")
    console.print(
        f"{len(outcome.trials)} trials ({failed} failed) in {outcome.wall_s:.0f}s; "
        f"results in {outcome.storage_path}"
    )
    print_front(outcome, console)
    if outcome.stop_reason and outcome.stop_reason != f"all {spec.search.num_samples} trials ran":
        console.print(f"stopped early: {outcome.stop_reason}")
    if outcome.warm_start:
        console.print(outcome.warm_start)
    console.print(
        f"MLflow: experiment '{spec.experiment_name}' (id {outcome.experiment_id}), "
        f"parent run {outcome.run_name} ({outcome.parent_run_id})"
    )
    console.print(f"        tracking URI {redact_uri(outcome.tracking_uri)}")
    reg = outcome.registration
    if reg is None and not spec.register.enabled:
        console.print("Not registered: register.enabled is false")
    if reg is not None:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in reg.metrics.items())
        console.print(f"Registered: {reg.model_name} version {reg.version} ({scores})")
        if reg.members:
            console.print(f"        {ensemble_line(reg)}")
        if reg.note:
            console.print(f"        {reg.note}")
        previous = "no value" if reg.previous_value is None else f"{reg.previous_value:.4f}"
        if reg.alias_moved and reg.previous_version:
            console.print(
                f"        alias '{reg.alias}' moved from version {reg.previous_version} "
                f"({reg.metric} {previous}) to {reg.version} ({reg.metric} {reg.value:.4f})"
            )
        elif reg.alias_moved:
            console.print(f"        alias '{reg.alias}' set on version {reg.version}")
        else:
            console.print(
                f"        alias '{reg.alias}' stays on version {reg.previous_version} "
                f"({reg.metric} {previous} is not beaten by {reg.value:.4f})"
            )
    for rejected in outcome.rejected_writes:
        console.print(f"[yellow]warning:[/] MLflow refused a write: {rejected}")
    if outcome.registry_note:
        console.print(f"        {outcome.registry_note}")
    arn = parse_arn(outcome.tracking_uri)
    if arn is not None:
        presign = (
            f"create-presigned-mlflow-tracking-server-url --tracking-server-name {arn.name}"
            if arn.kind == "mlflow-tracking-server"
            else f"create-presigned-mlflow-app-url --arn {arn.arn}"
        )
        console.print(
            f"View it: SageMaker Studio > MLflow > {arn.name}, "
            f"or open the URL from `aws sagemaker {presign}`"
        )
    elif is_local_store(outcome.tracking_uri):
        console.print(f"View it: mlflow ui --backend-store-uri {outcome.tracking_uri}")
    else:
        console.print(f"View it: {outcome.tracking_uri}/#/experiments/{outcome.experiment_id}")
    if outcome.unsent_note:
        console.print(f"[yellow]warning:[/] {outcome.unsent_note}")
