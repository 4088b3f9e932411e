"""The abalone model as a trial builds it (worker side; TensorFlow on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from trainable.data import load_dataset, split_dataset  # noqa: E402
from trainable.model import REFERENCE_CONFIG, build_model_for, hidden_widths  # noqa: E402
from trainable.pipeline import fit_inputs  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    return split_dataset(load_dataset("builtin:abalone"), 0.15, 0.2, 42)


def test_hidden_layers_halve_in_width_down_to_four_units():
    assert hidden_widths(3, 64) == [64, 32, 16]
    assert hidden_widths(4, 8) == [8, 4, 4, 4]


def test_untrained_model_predicts_the_training_mean(splits):
    model = build_model_for({**REFERENCE_CONFIG, "batch_norm": False}, splits.train, "rings")
    x, _ = splits.xy("val")
    bias = model.get_layer("rings").bias.numpy()
    assert bias == pytest.approx([splits.train["rings"].mean()], rel=1e-6)
    assert np.isfinite(np.asarray(model(x, training=False))).all()


def test_optimizer_variables_exist_before_fit(splits):
    """Fit must not create optimizer variables: that would make TensorFlow trace the train
    step twice in every trial."""
    model = build_model_for(REFERENCE_CONFIG, splits.train, "rings")
    assert model.optimizer.built
    before = [v.path for v in model.optimizer.variables]
    train, val = fit_inputs(splits, 32, seed=0)
    model.fit(train, validation_data=val, epochs=1, shuffle=False, verbose=0)
    assert [v.path for v in model.optimizer.variables] == before
