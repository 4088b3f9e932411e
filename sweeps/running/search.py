"""The spec's search section as Ray Tune objects: space, Optuna TPE searcher, scheduler."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from sweeps.config.spec import SweepSpec


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's ``param_space``: distributions for searched parameters, plain values for constants."""
    return {name: p.to_tune() for name, p in spec.search.space.items()}


def make_searcher(spec: SweepSpec) -> Searcher:
    """Seeded Optuna TPE behind a concurrency limit; the spec's initial points are tried first."""
    import optuna

    search = spec.search
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_search = OptunaSearch(
        sampler=optuna.samplers.TPESampler(seed=search.seed),
        points_to_evaluate=[dict(p) for p in search.initial_points] or None,
    )
    return ConcurrencyLimiter(optuna_search, max_concurrent=search.max_concurrent)


def make_scheduler(spec: SweepSpec) -> TrialScheduler:
    """ASHA (stops weak trials early at rungs, by epoch) if the spec asks for it, else FIFO."""
    sched = spec.search.scheduler
    if sched is None:
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=sched.max_t,
        grace_period=sched.grace_period,
        reduction_factor=sched.reduction_factor,
    )


def stop_epochs(spec: SweepSpec) -> list[int]:
    """Epochs after whose report the scheduler may stop a trial: ASHA's rungs (``grace_period``
    times powers of ``reduction_factor``, up to ``max_t``), none for FIFO."""
    sched = spec.search.scheduler
    if sched is None:
        return []
    # The rung count exactly as Ray's ASHA bracket computes it (numpy's log included).
    rungs = int(np.log(sched.max_t / sched.grace_period) / np.log(sched.reduction_factor) + 1)
    return sorted(
        {math.ceil(sched.grace_period * sched.reduction_factor**k) for k in range(rungs)}
        | {sched.max_t}
    )
