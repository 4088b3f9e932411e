"""The line between driver and worker: the driver knows the contract, never a family."""

from __future__ import annotations

import re

import pytest
from helpers import REPO

from trainable.families import abalone, breast_cancer
from trainable.keras_family import MODEL_FILE, STATE_FILE
from trainable.model_cost import MODEL_METRICS

FAMILIES = [abalone.family, breast_cancer.family]


def _family_words() -> set[str]:
    """Column, metric and file names that belong to the shipped families."""
    words = {MODEL_FILE, STATE_FILE, "abalone.yaml", "breast_cancer.yaml"}
    for family in FAMILIES:
        schema = family.schema
        words |= {c.name for c in schema.features} | {schema.target}
        words |= set(family.metrics) | set(family.test_metrics)
    # Keras's own name for any model's loss, and the cost every Keras model reports
    # (trainable/model_cost.py): no family's own.
    return words - {"val_loss", "test_loss", *MODEL_METRICS}


@pytest.mark.parametrize(
    "path", sorted((REPO / "sweeps").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO))
)
def test_no_driver_module_names_a_familys_columns_metrics_or_files(path):
    text = path.read_text()
    # Names as code uses them: quoted, or a metric/file name anywhere ("length" is also English).
    found = sorted(
        w
        for w in _family_words()
        if re.search(rf"[\"'`]{re.escape(w)}[\"'`]", text)
        or ("_" in w or "." in w)
        and re.search(rf"\b{re.escape(w)}\b", text)
    )
    assert found == [], f"{path.name} names {found}"
