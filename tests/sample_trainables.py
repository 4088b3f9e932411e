"""Model families used by tests: the real abalone family with injected failures."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from trainable.contract import Objective
from trainable.families.abalone import SCHEMA
from trainable.families.mlp import TabularMLP
from trainable.tables import Splits


class SecondTrialFails(TabularMLP):
    """Like the abalone family, except that trial-0002 always raises."""

    def train(
        self,
        config: Mapping[str, Any],
        data: Splits,
        objective: Objective,
        stop_epochs: Collection[int] = (),
    ) -> None:
        from ray import tune

        if tune.get_context().get_trial_name().endswith("0002"):
            raise RuntimeError("injected failure in trial-0002")
        super().train(config, data, objective, stop_epochs)


class CrashesOnceAfterFirstCheckpoint(TabularMLP):
    """Trains one epoch (checkpointing it), then raises; the retry resumes from that checkpoint."""

    def train(
        self,
        config: Mapping[str, Any],
        data: Splits,
        objective: Objective,
        stop_epochs: Collection[int] = (),
    ) -> None:
        from ray import tune

        if tune.get_checkpoint() is None:
            super().train({**config, "epochs": 1}, data, objective, stop_epochs)
            raise RuntimeError("injected crash after the first checkpoint")
        super().train(config, data, objective, stop_epochs)


second_trial_fails = SecondTrialFails("abalone", "regression", SCHEMA, "builtin:abalone")
crashes_once_after_first_checkpoint = CrashesOnceAfterFirstCheckpoint(
    "abalone", "regression", SCHEMA, "builtin:abalone"
)
