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
