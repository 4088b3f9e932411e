"""What the driver hands the registration child: the best checkpoint and its context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from sweeps.registration.registry import Lineage
    from trainable.contract import Objective, Schema


@dataclass
class RegistrationJob:
    """What to register: the best trial's checkpoint (a local folder) and where it came from."""

    checkpoint_dir: str
    test: pd.DataFrame
    schema: Schema
    lineage: Lineage
    model_name: str
    alias: str
    champion: Objective
