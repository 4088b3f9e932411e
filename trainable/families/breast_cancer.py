"""The breast cancer family: classify a tumour as ``malignant`` or ``benign`` from 30 features of
a cell-nucleus image (Wisconsin diagnostic table, shipped offline by scikit-learn), with the
tabular MLP of :mod:`trainable.tabular`. The registered model returns both class probabilities.

Its default spec is ``breast_cancer.yaml`` beside this module.
"""

from __future__ import annotations

from trainable.contract import Schema
from trainable.families.mlp import TabularMLP

#: Every other column of the table is a numeric feature (taken from the table when loaded).
SCHEMA = Schema(
    features=(), target="diagnosis", task="classification", classes=("benign", "malignant")
)

family = TabularMLP(
    "breast_cancer", "classification", SCHEMA, default_source="builtin:breast_cancer"
)
