"""A spec's model family and data splits, as the sweeper's driver gets them, without Ray.

Cheap to import (no TensorFlow, no MLflow): a family's module must not load TensorFlow at
import time, and the driver's checks are imported only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeps.config.spec import SweepSpec
    from trainable.contract import ModelFamily
    from trainable.tables import Splits

REPO = Path(__file__).resolve().parents[1]
#: The spec the benchmark runs when given none: the abalone regression family's.
DEFAULT_SPEC = REPO / "trainable" / "families" / "abalone.yaml"


def spec_path(name: str | Path) -> Path:
    """A spec file: ``name`` as a path, or a shipped family spec's name (``breast_cancer``)."""
    from sweeps.config.spec import find_spec_file

    return find_spec_file(name).resolve()


def family_and_splits(spec: SweepSpec) -> tuple[ModelFamily, Splits]:
    """The family ``spec.trainable`` names and the spec's train/val/test splits: the data the
    sweep checks in its preflight (``data.source`` or the family's default table, read against
    the spec's schema over the family's), split by ``data.split``.

    Raises:
        PreflightError: the family cannot be loaded or names no table.
        DataError: the table cannot be read or does not fit the schema.
    """
    from sweeps.running.preflight import load_data, load_family
    from trainable.tables import split_dataset

    family = load_family(spec.trainable, spec.folder)
    split = spec.data.split
    return family, split_dataset(load_data(spec, family), split.val, split.test, split.seed)
