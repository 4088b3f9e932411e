"""Which trial a sweep registers (``register.select``), one rule for one or several objectives.

The candidates are the complete trials (ended normally, :attr:`~sweeps.results.TrialRecord.
complete`) with a finite value of every metric the rule names, each value taken at the trial's
best epoch (:attr:`~sweeps.results.TrialRecord.values`, what its checkpoint holds). Those
satisfying every bound of ``where`` are ranked by ``best`` in its search mode (default: the
search metric), ties broken by the other search metrics in order, then by trial number; the
first is registered. Ranked that way, the pick is never dominated by another trial that
satisfies ``where``; with bounds in each metric's good direction (an upper bound on a
minimised metric, a lower bound on a maximised one) it is on the sweep's Pareto front
(:mod:`sweeps.search.pareto`).

No candidate satisfies ``where``: nothing is registered, and :attr:`Selection.note` says why.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweeps.config.spec import COMPARISONS
from sweeps.search.pareto import ranking_key

if TYPE_CHECKING:
    from sweeps.config.spec import SweepSpec
    from sweeps.results import TrialRecord
    from trainable.contract import Objective

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
assert tuple(_OPERATORS) == COMPARISONS

#: Parent run tag saying why a finished sweep registered nothing.
TAG_NOT_REGISTERED = "sweep.not_registered"


@dataclass(frozen=True)
class Selection:
    """The trial to register, or None and the reason (one line)."""

    trial: TrialRecord | None
    note: str | None = None
    rule: str = ""  # how it was chosen, e.g. "best val_loss (min) where size < 20000"


def select_trial(trials: Iterable[TrialRecord], spec: SweepSpec) -> Selection:
    """The trial ``spec.register.select`` picks (default: the best by the search metric)."""
    ranked = ranked_trials(trials, spec)
    rule = describe_rule(spec)
    if ranked:
        return Selection(ranked[0], rule=rule)
    if spec.register.select is not None and spec.register.select.where:
        return Selection(
            None, f"no complete trial has {where_text(spec)}: nothing registered", rule
        )
    return Selection(None, "no trial completed with a result: nothing registered", rule)


def ranked_trials(trials: Iterable[TrialRecord], spec: SweepSpec) -> list[TrialRecord]:
    """The candidates satisfying ``register.select.where``, best first (see the module doc)."""
    order = ordered_objectives(spec)
    where = spec.register.select.where if spec.register.select else {}
    chosen = []
    for trial in trials:
        values = _values(trial, [o.metric for o in order] + list(where), spec.objective.metric)
        if values is not None and satisfies(values, where):
            chosen.append((trial, values))
    return [
        t
        for t, values in sorted(
            chosen,
            key=lambda tv: (*ranking_key([tv[1][o.metric] for o in order], order), tv[0].number),
        )
    ]


def ordered_objectives(spec: SweepSpec) -> list[Objective]:
    """The search objectives, ``register.select.best``'s first (it ranks; the others break
    ties)."""
    objectives = spec.search.objectives
    best = spec.register.select.best if spec.register.select else None
    first = next((o for o in objectives if o.metric == best), objectives[0])
    return [first, *(o for o in objectives if o is not first)]


def satisfies(values: dict[str, float], where: dict[str, dict[str, float]]) -> bool:
    """Whether ``values`` meet every bound of ``where`` (``{metric: {op: bound}}``)."""
    return all(
        _OPERATORS[op](values[metric], bound)
        for metric, bounds in where.items()
        for op, bound in bounds.items()
    )


def where_text(spec: SweepSpec) -> str:
    """``size < 20000 and ...``: ``register.select.where`` as text."""
    where = spec.register.select.where if spec.register.select else {}
    return " and ".join(
        f"{metric} {op} {bound:g}"
        for metric, bounds in where.items()
        for op, bound in bounds.items()
    )


def describe_rule(spec: SweepSpec) -> str:
    """``best val_loss (min) where size < 20000``: how the registered trial is chosen."""
    best = ordered_objectives(spec)[0]
    where = where_text(spec)
    return f"best {best.metric} ({best.mode})" + (f" where {where}" if where else "")


def _values(trial: TrialRecord, metrics: Sequence[str], primary: str) -> dict[str, float] | None:
    """The trial's finite value of each of ``metrics``, or None (incomplete, or one missing);
    the value of ``primary`` (the search metric) defaults to the trial's best value."""
    if not trial.complete:
        return None
    values = {}
    for metric in metrics:
        value = trial.values.get(metric, trial.best_value if metric == primary else None)
        if value is None or not math.isfinite(value):
            return None
        values[metric] = float(value)
    return values


__all__ = [
    "TAG_NOT_REGISTERED",
    "Selection",
    "describe_rule",
    "ranked_trials",
    "select_trial",
    "satisfies",
]
