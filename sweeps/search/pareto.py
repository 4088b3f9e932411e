"""The Pareto front of a sweep with several objectives (``search.metrics``).

A trial's value for each objective is the value of that metric at the trial's best epoch of
the primary metric (:attr:`~sweeps.results.TrialRecord.values`): the model its checkpoint
holds, and so the model registration would load. Trial ``a`` dominates ``b`` when ``a`` is at
least as good on every objective and strictly better on one; the front is every complete trial
(ended normally, a finite value for each objective) that no other complete trial dominates.
Trials with equal values on every objective do not dominate each other: both stay.

Plain Python on plain data (no Optuna, no Ray), so ``sweep best`` uses it on MLflow's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from trainable.contract import Objective

if TYPE_CHECKING:
    from sweeps.results import TrialRecord

Vector = Sequence[float]


def dominates(a: Vector, b: Vector, objectives: Sequence[Objective]) -> bool:
    """Whether values ``a`` are at least as good as ``b`` on every objective and strictly
    better on one (each objective in its own mode)."""
    strictly = False
    for x, y, objective in zip(a, b, objectives, strict=True):
        if objective.better(y, x):
            return False
        strictly = strictly or objective.better(x, y)
    return strictly


def non_dominated(vectors: Sequence[Vector], objectives: Sequence[Objective]) -> list[int]:
    """Indices (ascending) of the ``vectors`` no other vector dominates."""
    return [
        i
        for i, v in enumerate(vectors)
        if not any(dominates(w, v, objectives) for j, w in enumerate(vectors) if j != i)
    ]


def objective_values(
    trial: TrialRecord, objectives: Sequence[Objective]
) -> tuple[float, ...] | None:
    """The trial's value for each objective, or None if it is not complete or lacks one (the
    first objective, the search metric, defaults to the trial's best value)."""
    if not trial.complete:
        return None
    values = []
    for i, objective in enumerate(objectives):
        value = trial.values.get(objective.metric, trial.best_value if i == 0 else None)
        if value is None or not math.isfinite(value):
            return None
        values.append(float(value))
    return tuple(values)


def pareto_front(
    trials: Iterable[TrialRecord], objectives: Sequence[Objective]
) -> list[TrialRecord]:
    """The non-dominated complete trials, best first by the first (primary) objective, then
    by the others in order, then by trial number."""
    scored = [(t, v) for t in trials if (v := objective_values(t, objectives)) is not None]
    front = [scored[i] for i in non_dominated([v for _, v in scored], objectives)]
    front.sort(key=lambda tv: (*ranking_key(tv[1], objectives), tv[0].number))
    return [t for t, _ in front]


def ranking_key(values: Vector, objectives: Sequence[Objective]) -> tuple[float, ...]:
    """A sort key putting the best values first, objective by objective (lexicographic: the
    first of a set sorted by it is not dominated by any other member of that set)."""
    return tuple(o.key(v) for v, o in zip(values, objectives, strict=True))


__all__ = ["dominates", "non_dominated", "objective_values", "pareto_front", "ranking_key"]
