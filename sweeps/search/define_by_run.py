"""The spec's search space as an Optuna define-by-run function.

Parents are suggested before their children, and a conditional parameter only when its
``when`` holds for the values already chosen, so a trial holds exactly the parameters that
exist for it. Constants are returned (Ray's ``OptunaSearch`` merges them into the config);
Optuna never sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweeps.config.conditions import ordered
from sweeps.config.space import Param


class SpaceFunction:
    """``space(trial) -> constants``: suggests every parameter that exists in this trial.

    A plain picklable object (not a closure): Tune saves the searcher with the sweep's state.
    """

    def __init__(self, space: Mapping[str, Param]) -> None:
        self.space = dict(space)
        self.order = ordered(self.space)

    def __call__(self, trial: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.order:
            param = self.space[name]
            if param.when is not None and not param.when.holds(values):
                continue
            values[name] = param.suggest(trial, name)
        return {name: v for name, v in values.items() if not self.space[name].searched}

    def distributions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna's distributions of the searched parameters among ``params``."""
        return {
            name: self.space[name].to_optuna()
            for name in params
            if name in self.space and self.space[name].searched
        }
