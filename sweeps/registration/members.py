"""Which trials make the ensemble ``register.ensemble: K`` asks for (driver side, no TensorFlow).

The members are the best trial (the one registered without an ensemble) and then the other
complete trials, best first by the sweep's objective, that left a checkpoint and a child run,
up to K in all. Fewer than K such trials make a smaller ensemble; one makes none (the single
best is registered); either way the job carries a note saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sweeps.registration.job import Member

if TYPE_CHECKING:
    from sweeps.results import TrialRecord
    from trainable.contract import Objective

#: Makes a member's checkpoint local: (checkpoint, trial number) -> (local folder, its URI).
Fetch = Callable[[Any, int], tuple[str, str]]


def ranked(trials: Iterable[TrialRecord], best: TrialRecord, objective: Objective):
    """The complete trials other than ``best`` with a child run, best first (ties: lower
    trial number first)."""
    others = [t for t in trials if t.complete and t.run_id and t.trial_id != best.trial_id]
    return sorted(others, key=lambda t: (objective.key(t.best_value), t.number))


def choose_members(
    best: Member,
    best_record: TrialRecord,
    trials: Iterable[TrialRecord],
    checkpoints: Mapping[str, Any],
    size: int,
    objective: Objective,
    fetch: Fetch,
) -> tuple[tuple[Member, ...], str | None]:
    """Up to ``size`` members, ``best`` first, then the trials :func:`ranked` next that have a
    checkpoint in ``checkpoints`` (by trial id; ``fetch`` makes it local), and the note when
    they are fewer than ``size``. No members (an empty tuple) when only ``best`` qualifies."""
    members = [best]
    for trial in ranked(trials, best_record, objective):
        if len(members) == size:
            break
        checkpoint = checkpoints.get(trial.trial_id)
        if checkpoint is None or trial.run_id is None:
            continue
        folder, uri = fetch(checkpoint, trial.number)
        members.append(Member(trial.number, trial.run_id, folder, uri))
    return (tuple(members) if len(members) > 1 else ()), shortfall_note(size, len(members))


def shortfall_note(size: int, found: int) -> str | None:
    """Why the ensemble has ``found`` members instead of ``size`` (None if it has them all)."""
    if found >= size:
        return None
    if found < 2:
        return (
            f"register.ensemble: {size} asked, only {found} trial completed with a model: "
            "the single best model is registered"
        )
    return (
        f"register.ensemble: {size} asked, only {found} trials completed with a model: "
        f"an ensemble of {found} is registered"
    )


__all__ = ["Fetch", "choose_members", "ranked", "shortfall_note"]
