"""The parent run's summary artifacts of a finished sweep: a results table and Optuna plots.

Works from plain data (no Ray objects): the trials are rebuilt into an in-memory Optuna study
so Optuna's own visualisations draw them. The plots are written as one interactive HTML page
with plotly.js embedded once (viewable offline, e.g. in the MLflow UI) and as PNGs drawn with
matplotlib (Optuna's matplotlib backend), so no Chrome/kaleido is needed.
"""

from __future__ import annotations

import contextlib
import csv
import html
import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.config.spec import SweepSpec
from sweeps.record.runs import trial_run_name
from sweeps.results import TrialRecord
from sweeps.search.pareto import objective_values, pareto_front

if TYPE_CHECKING:
    import optuna
    from plotly.graph_objects import Figure

RESULTS_FILE = "results.csv"
PARETO_FILE = "pareto.csv"
PARETO_FRONT = "pareto_front"
HTML_FILE = "summary.html"
HISTORY = "optimization_history"
PARALLEL = "parallel_coordinates"
IMPORTANCES = "param_importances"
LEARNING_CURVES = "learning_curves"
COMPLETE = "COMPLETE"
FAIL = "FAIL"


def write_summary(
    trials: list[TrialRecord], spec: SweepSpec, folder: Path, top_n: int = 5
) -> list[Path]:
    """Write ``results.csv`` (and ``pareto.csv`` with several objectives) and the plots into
    ``folder``; return the files written.

    Plots (all in ``summary.html`` with plotly.js embedded, and one ``.png`` each when
    matplotlib is installed):
    optimization history, parallel coordinates, hyperparameter importances (only with at least
    two complete trials and a parameter that varies) and learning curves of the ``top_n`` best
    trials (only for trials with a history), all of the primary metric; with several
    objectives, the Pareto front too. No plot is drawn if no trial completed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [write_results_csv(trials, spec, folder / RESULTS_FILE)]
    if len(spec.search.objectives) > 1:
        written.append(write_pareto_csv(trials, spec, folder / PARETO_FILE))
    if not any(t.complete for t in trials):
        return written
    study = build_study(trials, spec)
    figures = build_figures(study, trials, spec, top_n)
    written.append(write_html_report(figures, spec, folder / HTML_FILE))
    if importlib.util.find_spec("matplotlib") is not None:
        written += _write_pngs(study, trials, spec, folder, top_n)
    return written


def write_html_report(figures: dict[str, Figure], spec: SweepSpec, path: Path) -> Path:
    """All interactive plots in one page, plotly.js embedded once (about 5 MB, works offline)."""
    sections = []
    for i, (name, fig) in enumerate(figures.items()):
        body = fig.to_html(include_plotlyjs=(i == 0), full_html=False, div_id=name)
        sections.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>\n{body}")
    # The metric's name comes from the model family's code: text, never markup.
    goals = ", ".join(f"{o.metric} ({o.mode})" for o in spec.search.objectives)
    title = html.escape(f"Sweep {spec.name}: {goals}")
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    path.write_text(page)
    return path


def write_results_csv(trials: list[TrialRecord], spec: SweepSpec, path: Path) -> Path:
    """One row per trial: trial, run_id, state, the metric's value (with several objectives,
    each objective's value at the trial's best epoch), each hyperparameter."""
    metric = spec.objective.metric
    others = [o.metric for o in spec.search.objectives[1:]]
    names = list(spec.searched)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "run_id", "state", metric, *others, *names])
        for t in sorted(trials, key=lambda t: t.number):
            value = "" if t.best_value is None else t.best_value
            state = COMPLETE if t.complete else FAIL
            row = [trial_run_name(t.number), t.run_id or "", state, value]
            row += [t.values.get(name, "") for name in others]
            writer.writerow(row + [t.config.get(name, "") for name in names])
    return path


def write_pareto_csv(trials: list[TrialRecord], spec: SweepSpec, path: Path) -> Path:
    """The Pareto front (:func:`sweeps.search.pareto.pareto_front`), one row per member, best
    primary value first: trial, run_id, each objective's value at the trial's best epoch."""
    objectives = spec.search.objectives
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "run_id", *(o.metric for o in objectives)])
        for t in pareto_front(trials, objectives):
            values = objective_values(t, objectives) or ()
            writer.writerow([trial_run_name(t.number), t.run_id or "", *values])
    return path


def build_study(trials: list[TrialRecord], spec: SweepSpec) -> optuna.Study:
    """An in-memory Optuna study holding ``trials`` in trial-number order; multi-objective
    (one direction per objective) when the spec has several.

    A trial that is not COMPLETE with a finite value of each objective is added as FAIL;
    parameters missing or outside the spec's space are left out of that trial.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    distributions = {name: p.to_optuna() for name, p in spec.searched.items()}
    objectives = spec.search.objectives
    with _optuna_quiet():
        study = optuna.create_study(
            directions=[o.direction for o in objectives], study_name=spec.name
        )
    for t in sorted(trials, key=lambda t: t.number):
        params = {
            k: v for k, v in t.config.items() if k in spec.searched and spec.searched[k].contains(v)
        }
        values = objective_values(t, objectives)
        study.add_trial(
            create_trial(
                params=params,
                distributions={k: distributions[k] for k in params},
                values=list(values) if values is not None else None,
                state=TrialState.COMPLETE if values is not None else TrialState.FAIL,
                user_attrs={"trial": trial_run_name(t.number), "run_id": t.run_id or ""},
            )
        )
    return study


def build_figures(
    study: optuna.Study, trials: list[TrialRecord], spec: SweepSpec, top_n: int = 5
) -> dict[str, Figure]:
    """The plotly figures, keyed by file stem; skipped plots are absent."""
    from optuna import visualization as vis

    with _optuna_quiet():
        return _draw(vis, study, trials, spec, top_n, learning_curves_figure)


def _draw(
    backend: Any,
    study: optuna.Study,
    trials: list[TrialRecord],
    spec: SweepSpec,
    top_n: int,
    learning_curves: Any,
) -> dict[str, Any]:
    """The plots drawn with one of Optuna's visualisation backends (plotly or matplotlib)."""
    metric = spec.objective.metric
    # A multi-objective study needs a target: the primary metric, as for one objective.
    primary = {"target": _primary} if len(study.directions) > 1 else {}
    plots = {
        HISTORY: backend.plot_optimization_history(study, target_name=metric, **primary),
        PARALLEL: backend.plot_parallel_coordinate(study, target_name=metric, **primary),
    }
    if can_rank_importances(study):
        plots[IMPORTANCES] = backend.plot_param_importances(study, target_name=metric, **primary)
    top = top_trials(trials, spec, top_n)
    if top:
        plots[LEARNING_CURVES] = learning_curves(top, metric)
    if len(study.directions) > 1:
        plots[PARETO_FRONT] = _pareto_plot(backend, study, spec)
    return plots


def _primary(trial: optuna.trial.FrozenTrial) -> float:
    """A trial's value of the primary (first) objective."""
    return trial.values[0]


def _pareto_plot(backend: Any, study: optuna.Study, spec: SweepSpec) -> Any:
    """Optuna's Pareto front plot of the objectives (of the first two when there are more
    than three, which it cannot draw), dominated trials greyed."""
    names = [o.metric for o in spec.search.objectives]
    if len(names) <= 3:
        return backend.plot_pareto_front(study, target_names=names)
    return backend.plot_pareto_front(
        study, target_names=names[:2], targets=lambda t: (t.values[0], t.values[1])
    )


def can_rank_importances(study: optuna.Study) -> bool:
    """At least two complete trials and one parameter taking more than one value among them."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 2:
        return False
    names = {name for t in done for name in t.params}
    return any(len({repr(t.params.get(name)) for t in done}) > 1 for name in names)


def top_trials(trials: list[TrialRecord], spec: SweepSpec, top_n: int) -> list[TrialRecord]:
    """The ``top_n`` best complete trials that have a history, best first."""
    key = spec.objective.key
    scored = [t for t in trials if t.complete and t.history]
    return sorted(scored, key=lambda t: (key(t.best_value), t.number))[: max(top_n, 0)]


def learning_curves_figure(top: list[TrialRecord], metric: str) -> Figure:
    """A plotly figure with the metric per epoch, one line per trial."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for t in top:
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(t.history) + 1)),
                y=list(t.history),
                mode="lines+markers",
                name=f"{trial_run_name(t.number)} ({metric}={t.best_value:.4g})",
            )
        )
    fig.update_layout(
        title=f"Learning curves of the top {len(top)} trials",
        xaxis_title="epoch",
        yaxis_title=metric,
    )
    return fig


def _write_pngs(
    study: optuna.Study, trials: list[TrialRecord], spec: SweepSpec, folder: Path, top_n: int
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # before pyplot is used: no display is needed
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization import matplotlib as mvis

    written = []
    # Optuna's matplotlib plots set a global style: keep it inside this block.
    with plt.rc_context(), warnings.catch_warnings(), _optuna_quiet():
        warnings.simplefilter("ignore", ExperimentalWarning)
        axes = _draw(mvis, study, trials, spec, top_n, _learning_curves_axes)
        # one axis per hyperparameter: widen so their tick labels do not overlap
        axes[PARALLEL].figure.set_size_inches(max(6.4, 1.4 * (len(spec.searched) + 1)), 5)
        for name, ax in axes.items():
            path = folder / f"{name}.png"
            ax.figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(ax.figure)
            written.append(path)
    return written


def _learning_curves_axes(top: list[TrialRecord], metric: str) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for t in top:
        epochs = range(1, len(t.history) + 1)
        ax.plot(
            epochs, t.history, marker=".", label=f"{trial_run_name(t.number)} ({t.best_value:.4g})"
        )
    ax.set_title(f"Learning curves of the top {len(top)} trials")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend()
    return ax


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's INFO logging and its few-trials / flat-axis UserWarnings, off for a while."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"optuna(\..*)?$")
            yield
    finally:
        optuna.logging.set_verbosity(level)


__all__ = [
    "build_figures",
    "build_study",
    "write_results_csv",
    "write_summary",
]
