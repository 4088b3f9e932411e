"""What the driver hands the registration child: the best checkpoint and its context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from sweeps.registration.registry import Lineage
    from trainable.contract import Objective, Schema


@dataclass(frozen=True)
class Member:
    """One trial of an ensemble (``register.ensemble``): its checkpoint and where it came from."""

    number: int  # the trial's number (trial-0007: 7)
    trial_run_id: str  # its child run, where its own model is logged
    checkpoint_dir: str  # a local folder
    checkpoint_uri: str  # where Tune keeps it

    @property
    def label(self) -> str:
        """``trial-0007:<child run id>``, as the ensemble's lineage tags list it."""
        return f"trial-{self.number:04d}:{self.trial_run_id}"


@dataclass
class RegistrationJob:
    """What to register: the best trial's checkpoint (a local folder) and where it came from.

    With ``members`` (two or more, the best first; ``register.ensemble``) the registered model
    is their ensemble instead. ``note`` says why an ensemble is smaller than asked or absent.
    """

    checkpoint_dir: str
    test: pd.DataFrame
    schema: Schema
    lineage: Lineage
    model_name: str
    alias: str
    champion: Objective
    members: tuple[Member, ...] = ()
    note: str | None = None
