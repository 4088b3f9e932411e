"""The tabular MLP as a trial builds it (worker side; TensorFlow on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from trainable.families.abalone import REFERENCE_CONFIG, SCHEMA, family  # noqa: E402
from trainable.families.breast_cancer import SCHEMA as CANCER  # noqa: E402
from trainable.pipeline import fit_inputs  # noqa: E402
from trainable.tables import load_dataset, read_table, split_dataset  # noqa: E402
from trainable.tabular import build_tabular_model, hidden_widths, model_inputs  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    return split_dataset(load_dataset("builtin:abalone", SCHEMA), 0.15, 0.2, 42)


@pytest.fixture(scope="module")
def cancer():
    return split_dataset(load_dataset("builtin:breast_cancer", CANCER), 0.15, 0.15, 0)


def test_hidden_layers_halve_in_width_down_to_four_units():
    assert hidden_widths(3, 64) == [64, 32, 16]
    assert hidden_widths(4, 8) == [8, 4, 4, 4]


def test_untrained_model_predicts_the_training_mean(splits):
    model = family.build({**REFERENCE_CONFIG, "batch_norm": False}, splits.schema, splits.train)
    bias = model.get_layer("rings").bias.numpy()
    assert bias == pytest.approx([splits.train["rings"].mean()], rel=1e-6)
    output = np.asarray(model(model_inputs(splits.val, splits.schema), training=False))
    assert np.isfinite(output).all()


def test_untrained_classifier_predicts_the_training_class_frequency(cancer):
    model = build_tabular_model(REFERENCE_CONFIG, cancer.schema, cancer.train)
    bias = float(model.get_layer("diagnosis").bias.numpy()[0])
    counts = cancer.train["diagnosis"].value_counts()
    expected = (counts["malignant"] + 1) / (counts["benign"] + 1)
    assert np.exp(bias) == pytest.approx(expected, rel=1e-5)


def test_optimizer_variables_exist_before_fit(splits):
    """Fit must not create optimizer variables: that would make TensorFlow trace the train
    step twice in every trial."""
    model = family.build(REFERENCE_CONFIG, splits.schema, splits.train)
    assert model.optimizer.built
    before = [v.path for v in model.optimizer.variables]
    train, val = fit_inputs(splits, 32, seed=0)
    model.fit(train, validation_data=val, epochs=1, shuffle=False, verbose=0)
    assert [v.path for v in model.optimizer.variables] == before


def test_builtin_abalone_is_scikit_legos_table_as_it_ships_it():
    from sklego.datasets import load_abalone

    _, frame = read_table("builtin:abalone")
    assert frame.equals(load_abalone(as_frame=True))
