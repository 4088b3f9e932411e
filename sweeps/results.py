"""What a sweep produced, as plain data (no Ray objects): a record per trial and the outcome.

The sweep (:mod:`sweeps.running.sweep`) makes them, the summary artifacts
(:mod:`sweeps.record.artifacts`) draw them and the CLI (:mod:`sweeps.views.outcome`) prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.config.spec import SweepSpec
    from sweeps.registration.registry import Registration

TOP_N = 5
#: A trial's status: ended normally (finished, stopped early by the scheduler) or failed.
TERMINATED = "TERMINATED"
ERROR = "ERROR"


@dataclass
class TrialRecord:
    """One trial: its config and its best value of the sweep's metric, epoch by epoch."""

    number: int  # 1-based, in the order the searcher created it (trial-0001)
    trial_id: str = ""
    status: str = TERMINATED
    best_value: float | None = None
    best_epoch: int | None = None
    epochs: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    history: list[float] = field(default_factory=list)  # the metric, epoch by epoch
    #: Each search metric's value at ``best_epoch`` (the epoch the checkpoint holds), the
    #: sweep's own metric (``best_value``) included; see :mod:`sweeps.search.pareto`.
    values: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Ended normally with a finite value (what Optuna counts as a COMPLETE trial)."""
        return (
            self.status != ERROR and self.best_value is not None and math.isfinite(self.best_value)
        )


@dataclass
class SweepOutcome:
    """What a finished sweep produced and where to find it."""

    spec: SweepSpec
    run_name: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    storage_path: str
    trials: list[TrialRecord]
    registration: Registration | None
    wall_s: float
    registry_note: str | None = None
    rejected_writes: list[str] = field(default_factory=list)  # MLflow calls the server refused
    unsent_note: str | None = None  # MLflow writes kept for `sweep sync`, if any
    stop_reason: str | None = None  # why the trials ended (search.stop, time budget, all ran)
    warm_start: str | None = None  # what a warm start learned from

    @property
    def best(self) -> TrialRecord | None:
        top = self.top(1)
        return top[0] if top else None

    def top(self, n: int = TOP_N) -> list[TrialRecord]:
        """The ``n`` best trials by the sweep's objective, best first."""
        key = self.spec.objective.key
        scored = [t for t in self.trials if t.best_value is not None]
        return sorted(scored, key=lambda t: (key(t.best_value), t.number))[:n]


__all__ = ["ERROR", "TERMINATED", "SweepOutcome", "TrialRecord"]
