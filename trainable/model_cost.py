"""What a trial's model costs, reported by every Keras family each epoch beside its compiled
metrics, so a sweep can trade accuracy for size or speed (``search.metrics``):

``params``
    The model's parameter count, trainable and not (``model.count_params()``).
``latency_ms``
    Mean milliseconds per row to predict the validation split (at most
    :data:`LATENCY_ROWS` of its rows) in one eager call, as the logged model predicts
    (:class:`trainable.serving.TabularKerasModel`), after a one-row warm-up call.

Both depend on the architecture, not the weights: they are measured once per trial (at its
first reported epoch; again after a restart) and the same values are reported every epoch,
so the value at any epoch, the checkpointed best one included, is the model's. The latency is
wall-clock time on a worker that may share its cores with other trials: compare it between
trials of one sweep, not across machines. Its cost is two eager calls, about 0.1 to 0.3 s
per trial for the shipped MLPs on 2 cores.

Importing this module loads no TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

PARAMS = "params"
LATENCY_MS = "latency_ms"
#: The metrics every :class:`~trainable.keras_family.KerasFamily` reports besides its own.
MODEL_METRICS = (PARAMS, LATENCY_MS)
#: Most validation rows timed for ``latency_ms``.
LATENCY_ROWS = 4096


class ModelCost:
    """``params`` and ``latency_ms`` of a model, measured at the first call and then repeated.

    ``inputs`` are the validation split's model inputs, in the form the model is fitted on (a
    dict of arrays, or an array).
    """

    def __init__(self, inputs: Any) -> None:
        self.inputs = inputs
        self._cost: dict[str, float] | None = None

    def __call__(self, model: keras.Model) -> dict[str, float]:
        """The model's cost (measured on the first call only)."""
        if self._cost is None:
            self._cost = {
                PARAMS: float(model.count_params()),
                LATENCY_MS: latency_ms(model, self.inputs),
            }
        return dict(self._cost)


def latency_ms(model: keras.Model, inputs: Any, rows: int = LATENCY_ROWS) -> float:
    """Mean milliseconds per row of one eager ``model(inputs, training=False)`` call on the
    first ``rows`` rows of ``inputs``, after a one-row warm-up call (NaN without rows)."""
    import keras

    head = keras.tree.map_structure(lambda a: a[:rows], inputs)
    count = len(keras.tree.flatten(head)[0])
    if count == 0:
        return float("nan")
    model(keras.tree.map_structure(lambda a: a[:1], head), training=False)  # one-time costs
    start = time.perf_counter()
    model(head, training=False)
    return (time.perf_counter() - start) * 1000.0 / count


def with_model_metrics(declared: Iterable[str]) -> tuple[str, ...]:
    """``declared`` metrics followed by :data:`MODEL_METRICS` (none added to an empty
    declaration, which means "unchecked")."""
    names = tuple(declared)
    if not names:
        return ()
    return names + tuple(m for m in MODEL_METRICS if m not in names)


__all__ = ["LATENCY_MS", "MODEL_METRICS", "PARAMS", "ModelCost", "latency_ms", "with_model_metrics"]
