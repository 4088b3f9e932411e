"""The tables ``sweep ls``, ``status`` and ``best`` print, from :mod:`sweeps.views.queries`."""

from __future__ import annotations

import math
import time

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table

from sweeps.errors import UserError
from sweeps.registration.ensemble import TAG_MEMBERS
from sweeps.views.queries import (
    DEFAULT_LIMIT,
    STATES,
    Store,
    SweepView,
    list_sweeps,
    open_store,
    pareto_front,
    registered_versions,
    sweep_view,
    trials_of,
)


def print_sweeps(
    console: Console,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> None:
    """``sweep ls``: the experiment's past sweeps as a table, newest first."""
    store = open_store(tracking_uri, experiment)
    parents = list_sweeps(store, limit)
    if not parents:
        console.print(f"no sweeps in {store.where()}; start one with `sweep run`")
        return
    views = [SweepView(p, trials_of(store, p.info.run_id)) for p in parents]
    metrics = {v.metric for v in views}
    single = metrics.pop() if len(metrics) == 1 else None
    tests = {v.test_metric for v in views}
    single_test = tests.pop() if len(tests) == 1 else None
    table = Table(title=f"Sweeps in {store.where()}", title_justify="left")
    table.add_column("sweep", overflow="fold", min_width=12)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("trials", min_width=10)
    table.add_column(f"best {single}" if single else "best", justify="right", no_wrap=True)
    table.add_column(single_test or "test", justify="right", no_wrap=True)
    table.add_column("parent run id", overflow="fold", min_width=16)
    for view in views:
        best = view.best_value()
        best_text = _num(best) if single else f"{view.metric} {_num(best)}"
        table.add_row(
            view.name,
            _status(view.parent.info.status),
            _when(view.parent.info.start_time),
            _trial_counts(view),
            best_text,
            _test_value(view, single_test),
            view.parent.info.run_id,
        )
    _print_wide(console, table)
    if len(parents) == limit:
        console.print(f"(newest {limit}; --limit N shows more)")


def print_sweep_status(
    console: Console,
    target: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> None:
    """``sweep status``: one sweep's trials by state, best so far and elapsed time."""
    store = open_store(tracking_uri, experiment)
    view = sweep_view(store, target)
    info = view.parent.info
    console.print(f"sweep [bold]{view.name}[/] {_status(info.status)}")
    console.print(f"  parent run  {info.run_id} in {store.where()}")
    states = view.states()
    counts = Table(title="trials by state", title_justify="left")
    shown = ("RUNNING", "FINISHED", "FAILED", "KILLED")
    columns = ["planned", *shown, *sorted(s for s in states if s not in shown)]
    for column in columns:
        counts.add_column(column.lower(), justify="right")
    planned = view.planned
    counts.add_row(
        str(planned) if planned is not None else "-",
        *(str(states.get(state, 0)) for state in columns[1:]),
    )
    _print_wide(console, counts)
    best = view.best_trial()
    if best is None:
        console.print(f"  best        no trial has reported {view.metric} yet")
    else:
        run, value = best
        console.print(
            f"  best        {view.metric} {_num(value)} ({view.mode}) by "
            f"{run.info.run_name} (run {run.info.run_id})"
        )
    elapsed = view.elapsed_s()
    ended = f", ended {_when(info.end_time)}" if info.end_time and info.status != "RUNNING" else ""
    console.print(f"  elapsed     {_duration(elapsed)} (started {_when(info.start_time)}{ended})")


def print_best(
    console: Console,
    target: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> None:
    """``sweep best``: the best trial's hyperparameters, metrics, run id and registered version;
    with several objectives (param ``search.metrics``), the Pareto front too.

    Raises:
        UserError: no such sweep, or no trial of it reported the metric.
    """
    store = open_store(tracking_uri, experiment)
    view = sweep_view(store, target)
    best = view.best_trial()
    if best is None:
        raise UserError(f"sweep {view.name}: no trial has reported {view.metric} yet")
    run, value = best
    console.print(
        f"best trial of [bold]{view.name}[/]: {run.info.run_name} with {view.metric} "
        f"{_num(value)} ({view.mode}), {_status(run.info.status)}"
    )
    console.print(f"  trial run   {run.info.run_id}")
    console.print(f"  sweep run   {view.parent.info.run_id} in {store.where()}")
    searched = [s.strip() for s in view.parent.data.params.get("search.space", "").split(",")]
    params = run.data.params
    names = [n for n in searched if n in params] + sorted(set(params) - set(searched))
    table = Table(title="hyperparameters", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("value")
    table.add_column("searched", justify="center")
    for name in names:
        table.add_row(name, params[name], "yes" if name in searched else "")
    _print_wide(console, table)
    metrics = Table(title="metrics (last logged values)", title_justify="left")
    metrics.add_column("name", no_wrap=True)
    metrics.add_column("value", justify="right")
    for name, metric_value in sorted(run.data.metrics.items()):
        metrics.add_row(name, _num(metric_value))
    _print_wide(console, metrics)
    versions = registered_versions(store, view.parent.info.run_id)
    if len(view.objectives) > 1:
        _print_front(console, store, view, {v.run_id for v in versions})
    if not versions:
        console.print(
            f"registered: no model version carries sweep_run_id={view.parent.info.run_id}"
        )
    for version in versions:
        aliases = ", ".join(sorted(version.aliases)) or "no alias"
        source = "this trial" if version.run_id == run.info.run_id else f"run {version.run_id}"
        members = [m.split(":", 1)[0] for m in version.tags.get(TAG_MEMBERS, "").split(",") if m]
        if members:
            single = _num(view.parent.data.metrics.get(view.test_metric))
            source = (
                f"ensemble of {len(members)} trials ({', '.join(members)}; single best "
                f"{view.test_metric} {single}) logged in the sweep run"
            )
        console.print(
            f"registered: [bold]{version.name}[/] version {version.version} ({aliases}); "
            f"{view.test_metric} {_num(_float(version.tags.get(view.test_metric)))}; "
            f"source: {source}"
        )
        console.print(
            f"  load it:   mlflow.pyfunc.load_model('models:/{version.name}/{version.version}')"
        )


def _print_front(console: Console, store: Store, view: SweepView, registered: set[str]) -> None:
    """The Pareto front of a sweep with several objectives, one row per member."""
    objectives = view.objectives
    front = pareto_front(store, view)
    goals = ", ".join(f"{o.metric} ({o.mode})" for o in objectives)
    table = Table(
        title=f"Pareto front of {goals}: {len(front)} of {len(view.trials)} trials",
        title_justify="left",
    )
    table.add_column("trial", no_wrap=True)
    for objective in objectives:
        table.add_column(objective.metric, justify="right", no_wrap=True)
    table.add_column("run id", no_wrap=True)
    table.add_column("registered", justify="center")
    for run, values in front:
        table.add_row(
            run.info.run_name,
            *(_value(v) for v in values),
            run.info.run_id,
            "yes" if run.info.run_id in registered else "",
        )
    _print_wide(console, table)


def _value(value: float) -> str:
    """Whole numbers (a parameter count) in full, others with four decimals."""
    return f"{value:.0f}" if value.is_integer() else _num(value)


def _test_value(view: SweepView, shared_name: str | None) -> str:
    """The parent's value of its test metric; prefixed with the name when sweeps differ."""
    value = _num(view.parent.data.metrics.get(view.test_metric))
    return value if shared_name else f"{view.test_metric} {value}"


def _trial_counts(view: SweepView) -> str:
    states = view.states()
    parts = [f"{states.get('FINISHED', 0)} finished"]
    parts += [f"{states[s]} {s.lower()}" for s in STATES if s != "FINISHED" and states.get(s)]
    planned = view.planned
    return ", ".join(parts) + (f" of {planned}" if planned is not None else "")


def _print_wide(console: Console, renderable: RenderableType) -> None:
    """Print at full width when not on a terminal (piped, captured), so cells never wrap."""
    if console.is_terminal:
        console.print(renderable)
        return
    width = Measurement.get(console, console.options.update(width=10_000), renderable).maximum
    if width <= console.width:
        console.print(renderable)
        return
    wide = Console(file=console.file, width=width, highlight=False, no_color=console.no_color)
    wide.print(renderable)


def _status(status: str) -> str:
    colour = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "yellow"}
    return f"[{colour.get(status, 'white')}]{status}[/]"


def _num(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _when(millis: int | None) -> str:
    if not millis:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(millis / 1000))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
