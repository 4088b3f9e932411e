"""``search.warm_start``: earlier sweeps' finished trials, read back from MLflow, as trials the
searcher learns from before its first suggestion (they are never rerun).

The MLflow experiment is the search's memory: a sweep's parent run holds its metric, data
digest and searched parameter names; its child runs hold each trial's parameters and best
value. A sweep is compatible when it optimised the same metric in the same mode on the same
data (sha256) over the same parameter names; a trial value outside today's space is dropped
and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeps.errors import PreflightError, UserError

if TYPE_CHECKING:
    from mlflow.entities import Run

    from sweeps.config.spec import SweepSpec
    from sweeps.views.queries import Store

#: ``search.warm_start`` value meaning every compatible finished sweep of the experiment.
EXPERIMENT = "experiment"
#: At most this many earlier sweeps are read for ``experiment`` (newest first).
MAX_SWEEPS = 50
TAG_WARM_START = "sweep.warm_start"
TAG_WARM_NOTE = "sweep.warm_start_note"


@dataclass(frozen=True)
class PriorTrial:
    """One earlier trial: its searched parameters and the value(s) it reached."""

    params: dict[str, Any]
    values: tuple[float, ...]
    source: str  # the earlier sweep's run name


@dataclass
class Prior:
    """What a sweep learns from before it starts."""

    sweeps: list[str] = field(default_factory=list)  # run names learned from
    trials: list[PriorTrial] = field(default_factory=list)
    dropped: int = 0  # trials with a value outside today's space
    skipped: list[str] = field(default_factory=list)  # "NAME: why" for incompatible sweeps

    def summary(self) -> str:
        """One line for the terminal and the parent run."""
        if not self.sweeps:
            why = f" ({'; '.join(self.skipped[:3])})" if self.skipped else ""
            return f"warm start: no compatible finished sweep to learn from{why}"
        text = f"warm start: {len(self.trials)} trials from {', '.join(self.sweeps)}"
        if self.dropped:
            text += f"; {self.dropped} dropped (outside today's space)"
        if self.skipped:
            text += f"; {len(self.skipped)} sweeps skipped ({'; '.join(self.skipped[:3])})"
        return text


def warm_start_tags(prior: Prior) -> dict[str, str]:
    """The parent run's record of a warm start: the sweeps it learned from, and the summary."""
    return {TAG_WARM_START: ", ".join(prior.sweeps) or "none", TAG_WARM_NOTE: prior.summary()}


def find_prior(spec: SweepSpec, tracking_uri: str, data_sha256: str) -> Prior:
    """The trials ``spec.search.warm_start`` names, from the tracking store at ``tracking_uri``.

    Raises:
        PreflightError: a named sweep does not exist or is not compatible (one line, naming
            ``search.warm_start`` and why).
    """
    from sweeps.views.queries import find_sweep, list_sweeps, open_store

    ref = spec.search.warm_start
    assert ref is not None
    try:
        store = open_store(tracking_uri, spec.experiment_name)
    except UserError as exc:
        if ref == EXPERIMENT:
            return Prior(skipped=[f"experiment '{spec.experiment_name}' does not exist yet"])
        raise PreflightError(f"search.warm_start = {ref!r}: {exc.problems[0]}") from None
    prior = Prior()
    if ref == EXPERIMENT:
        parents = [run for run in list_sweeps(store, MAX_SWEEPS) if run.info.status == "FINISHED"]
    else:
        try:
            parents = [find_sweep(store, ref)]
        except UserError as exc:
            raise PreflightError(f"search.warm_start = {ref!r}: {exc.problems[0]}") from None
    for parent in parents:
        why = incompatibility(parent, spec, data_sha256)
        name = parent.info.run_name or parent.info.run_id
        if why:
            if ref != EXPERIMENT:
                raise PreflightError(f"search.warm_start = {ref!r}: sweep {name} {why}")
            prior.skipped.append(f"{name}: {why}")
            continue
        _add_trials(prior, store, parent, spec)
    return prior


def incompatibility(parent: Run, spec: SweepSpec, data_sha256: str) -> str | None:
    """Why the sweep of ``parent`` cannot teach ``spec``'s search, or None."""
    from sweeps.record.runs import TAG_DATA_SHA

    params, tags = parent.data.params, parent.data.tags
    metric, mode = spec.objective.metric, spec.objective.mode
    if params.get("search.metric") != metric or params.get("search.mode", "min") != mode:
        found = f"{params.get('search.metric')} ({params.get('search.mode')})"
        return f"optimised {found}, not {metric} ({mode})"
    if params.get("search.metrics", "") != metrics_param(spec):
        had, wanted = params.get("search.metrics") or metric, metrics_param(spec) or metric
        return f"had objectives {had}, not {wanted}"
    if tags.get(TAG_DATA_SHA) != data_sha256:
        return "ran on other data (its data.sha256 differs)"
    names = {n.strip() for n in params.get("search.space", "").split(",") if n.strip()}
    if names != set(spec.searched):
        return f"searched {', '.join(sorted(names)) or 'nothing'}, not {', '.join(spec.searched)}"
    return None


def metrics_param(spec: SweepSpec) -> str:
    """The parent run's ``search.metrics`` param: ``val_loss (min), params (min)``; empty for
    one objective."""
    if spec.search.metrics is None:
        return ""
    return ", ".join(f"{o.metric} ({o.mode})" for o in spec.search.objectives)


def _add_trials(prior: Prior, store: Store, parent: Run, spec: SweepSpec) -> None:
    from sweeps.views.queries import SweepView, trial_metric, trials_of

    view = SweepView(parent, trials_of(store, parent.info.run_id))
    name = view.name
    learned = 0
    for run in view.trials:
        if run.info.status != "FINISHED":
            continue
        values = [trial_metric(run, o.metric) for o in spec.search.objectives]
        if any(v is None for v in values):
            continue
        params = parse_params(run.data.params, spec)
        if params is None:
            prior.dropped += 1
            continue
        prior.trials.append(PriorTrial(params, tuple(values), name))
        learned += 1
    if learned:
        prior.sweeps.append(name)


def parse_params(logged: dict[str, str], spec: SweepSpec) -> dict[str, Any] | None:
    """A trial's searched parameters (MLflow keeps them as text) as today's space types, or
    None when one lies outside today's space."""
    params = {}
    for name, param in spec.searched.items():
        if name not in logged:
            continue  # a conditional parameter that did not exist in that trial
        value = parse_value(param.to_optuna(), logged[name])
        if value is None or not param.contains(value):
            return None
        params[name] = value
    return params or None


def parse_value(distribution: Any, text: str) -> Any | None:
    """``text`` as a value of the Optuna ``distribution``'s type, or None if it is none."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return next((c for c in distribution.choices if str(c) == text), None)
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if isinstance(distribution, IntDistribution):
        return int(number) if number == int(number) else None
    return number
