"""Trainables used by tests: the real abalone trainable with injected failures."""

from __future__ import annotations

from typing import Any

from trainable.data import Splits
from trainable.train import abalone


def second_trial_fails(config: dict[str, Any], data: Splits) -> None:
    """Like ``trainable.train:abalone``, except that trial-0002 always raises."""
    from ray import tune

    if tune.get_context().get_trial_name().endswith("0002"):
        raise RuntimeError("injected failure in trial-0002")
    abalone(config, data)


def crashes_once_after_first_checkpoint(config: dict[str, Any], data: Splits) -> None:
    """Trains one epoch (checkpointing it), then raises; the retry resumes from that checkpoint."""
    from ray import tune

    if tune.get_checkpoint() is None:
        abalone({**config, "epochs": 1}, data)
        raise RuntimeError("injected crash after the first checkpoint")
    abalone(config, data)
