"""The spec's search section as Ray Tune objects: the Optuna searcher and the scheduler."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from sweeps.config.spec import SweepSpec
from sweeps.search.define_by_run import SpaceFunction
from trainable.contract import BEST_PREFIX, epoch_of

if TYPE_CHECKING:
    from sweeps.search.warm_start import Prior


# Ray times the define-by-run call, which includes the sampler's own work (a GP's fit, CMA-ES's
# update): that is the search, not training hidden in the space, so the warning is noise.
warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space`")


class SweepSearch(OptunaSearch):
    """Ray's ``OptunaSearch`` over the spec's define-by-run space (conditions included),
    with the trials of earlier sweeps added to the study before the first suggestion.

    What Optuna learns from a trial is what the sweep keeps of it. Ray's searcher tells
    Optuna the last epoch's value and calls a trial the scheduler stopped at a rung COMPLETE
    with that partial value. Here (one objective):

    * each epoch's intermediate value is the trial's best so far (``best_<metric>``, when the
      trial reports it): its checkpoint holds the best model, not the last one;
    * a finished trial is COMPLETE with its best value;
    * a trial stopped before its last epoch by the scheduler or a stop rule (its final
      result was a STOP decision that Tune never passed to :meth:`on_trial_result`) is PRUNED,
      as Optuna's own pruners mark it, so TPE ranks it behind the trials that finished.
    """

    def __init__(
        self,
        space: SpaceFunction,
        prior: Prior | None = None,
        max_t: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._prior_trials = list(prior.trials) if prior else []
        self._max_t = max_t  # the scheduler's last epoch: a STOP there ends a full trial
        self._last_step: dict[str, int] = {}  # each running trial's last epoch told
        super().__init__(space=space, **kwargs)

    def _told(self, result: dict) -> float | None:
        """The objective's value to tell Optuna: the trial's best so far, if reported."""
        value = result.get(BEST_PREFIX + str(self._metric), result.get(self._metric))
        return None if value is None else float(value)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if isinstance(self._metric, list) or trial_id in self._completed_trials:
            return  # Optuna takes no intermediate values with several objectives
        step = epoch_of(result)
        self._last_step[trial_id] = step
        value = self._told(result)
        if value is not None:
            self._ot_trials[trial_id].report(value, step)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        last_step = self._last_step.pop(trial_id, None)
        one_objective = not isinstance(self._metric, list)
        if not (one_objective and result and not error) or trial_id in self._completed_trials:
            super().on_trial_complete(trial_id, result, error)
            return
        step, value = epoch_of(result), self._told(result)
        stopped = last_step is not None and step > last_step
        if value is not None and stopped and (self._max_t is None or step < self._max_t):
            import optuna

            ot_trial = self._ot_trials[trial_id]
            ot_trial.report(value, step)
            self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED)
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, {**result, self._metric: value}, error)

    def _setup_study(self, mode: str | list[str]) -> None:
        super()._setup_study(mode)
        import optuna

        space: SpaceFunction = self._space  # type: ignore[assignment]
        for prior in self._prior_trials:
            values = list(prior.values)
            self._ot_study.add_trial(
                optuna.trial.create_trial(
                    params=prior.params,
                    distributions=space.distributions(prior.params),
                    values=values if isinstance(self._metric, list) else None,
                    value=None if isinstance(self._metric, list) else values[0],
                    user_attrs={"warm_start": prior.source},
                )
            )
        self._prior_trials = []  # in the study now (and in its saved state)


def make_searcher(spec: SweepSpec, prior: Prior | None = None) -> Searcher:
    """The seeded Optuna sampler ``search.algorithm`` names, over the spec's space, behind a
    concurrency limit; the spec's initial points are tried first, and ``prior`` (a warm start's
    earlier trials) is known before any suggestion."""
    import optuna

    from sweeps.search.samplers import make_sampler

    search = spec.search
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = search.objectives
    several = len(objectives) > 1
    optuna_search = SweepSearch(
        SpaceFunction(search.space),
        prior,
        max_t=search.scheduler.max_t if search.scheduler is not None else None,
        metric=[o.metric for o in objectives] if several else spec.objective.metric,
        mode=[o.mode for o in objectives] if several else spec.objective.mode,
        sampler=make_sampler(search),
        points_to_evaluate=[dict(p) for p in search.initial_points] or None,
    )
    return ConcurrencyLimiter(optuna_search, max_concurrent=search.max_concurrent)


def make_scheduler(spec: SweepSpec) -> TrialScheduler:
    """ASHA (stops weak trials early at rungs, by epoch) if the spec asks for it, else FIFO."""
    sched = spec.search.scheduler
    if sched is None:
        return FIFOScheduler()
    return ASHAScheduler(
        # Epochs, not Tune's report count: a report may carry several epochs.
        time_attr="epoch",
        max_t=sched.max_t,
        grace_period=sched.grace_period,
        reduction_factor=sched.reduction_factor,
    )


#: The most epochs assumed for a trial whose epoch count the spec does not bound.
EPOCHS_UNBOUNDED = 1000


def stop_epochs(spec: SweepSpec) -> list[int]:
    """Epochs after whose report a trial may be stopped: ASHA's rungs (``grace_period`` times
    powers of ``reduction_factor``, up to ``max_t``), none for FIFO; and every epoch when the
    whole sweep may end at any report (``search.stop``, ``search.time_budget_s``), so that
    each trial stopped then has a checkpoint of its best model."""
    search = spec.search
    if search.stop is not None or search.time_budget_s is not None:
        return list(range(1, max_epochs(spec) + 1))
    sched = search.scheduler
    if sched is None:
        return []
    # The rung count exactly as Ray's ASHA bracket computes it (numpy's log included).
    rungs = int(np.log(sched.max_t / sched.grace_period) / np.log(sched.reduction_factor) + 1)
    return sorted(
        {math.ceil(sched.grace_period * sched.reduction_factor**k) for k in range(rungs)}
        | {sched.max_t}
    )


def max_epochs(spec: SweepSpec) -> int:
    """The most epochs a trial can report: ASHA's ``max_t``, else the largest value of the
    space's ``epochs`` (a constant or a finite distribution), else :data:`EPOCHS_UNBOUNDED`."""
    if spec.search.scheduler is not None:
        return spec.search.scheduler.max_t
    epochs = spec.search.space.get("epochs")
    for bound in (getattr(epochs, "value", None), getattr(epochs, "high", None)):
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            return int(bound)
    values = [v for v in getattr(epochs, "values", []) if isinstance(v, int)]
    return max(values, default=EPOCHS_UNBOUNDED)
