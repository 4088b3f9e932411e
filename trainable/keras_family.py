""":class:`KerasFamily`: the contract implemented once for any compiled Keras model.

A Keras family writes only :meth:`KerasFamily.build` (a compiled ``keras.Model`` from a trial's
config, the schema and the training split); training with per-epoch reports to Ray Tune,
early stopping and checkpoints by the sweep's objective, loading, test evaluation and logging
to MLflow come from here. The model takes a dict of 1-D arrays keyed by feature column
(:func:`trainable.tabular.model_inputs`) and is trained on :func:`trainable.tabular.encode_target`.
"""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trainable.contract import ModelFamily, Objective, Schema, held_out_name
from trainable.model_cost import MODEL_METRICS, with_model_metrics

if TYPE_CHECKING:
    import keras
    import pandas as pd

    from trainable.tables import Splits

MODEL_FILE = "model.keras"
STATE_FILE = "trial_state.json"
DEFAULT_PATIENCE = 10
DEFAULT_EPOCHS = 50
DEFAULT_BATCH_SIZE = 32


class KerasFamily(ModelFamily):
    """A model family whose model is a compiled Keras model. Subclass and write :meth:`build`.

    Config keys read here (all optional): ``epochs`` (most epochs, default 50), ``patience``
    (early stopping on the objective, default 10), ``batch_size`` (32), ``seed`` (0).

    Besides its compiled metrics, every epoch reports the model's cost,
    :data:`~trainable.model_cost.MODEL_METRICS` (``params``, ``latency_ms``; see
    :mod:`trainable.model_cost`), so :attr:`metrics` is what a subclass declares (as a class
    attribute or by assigning ``self.metrics``) followed by those two.
    """

    model_file = MODEL_FILE
    state_file = STATE_FILE
    #: The metrics the compiled model reports (``val_<name>``), as the family declares them.
    declared_metrics: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's ``metrics = (...)`` class attribute becomes its declared metrics (the
        :attr:`metrics` property adds the model's cost to them)."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("metrics")
        if own is not None and not isinstance(own, property):
            cls.declared_metrics = tuple(own)
            delattr(cls, "metrics")

    def warm_up(self) -> None:
        """Load TensorFlow and Keras (several seconds) before the model is needed."""
        import keras  # noqa: F401

    @property  # type: ignore[override]
    def metrics(self) -> tuple[str, ...]:
        """Every metric reported each epoch: the declared ones, then ``params`` and
        ``latency_ms`` (nothing when none is declared: the search metric is then unchecked)."""
        return with_model_metrics(self.declared_metrics)

    @metrics.setter
    def metrics(self, value: Sequence[str]) -> None:
        self.declared_metrics = tuple(value)

    @property
    def test_metrics(self) -> tuple[str, ...]:
        """What :meth:`evaluate` returns: ``test_<name>`` for each declared ``val_<name>``
        (the model's cost has no test value)."""
        return tuple(held_out_name(m) for m in self.declared_metrics if m not in MODEL_METRICS)

    @abstractmethod
    def build(self, config: Mapping[str, Any], schema: Schema, train: pd.DataFrame) -> keras.Model:
        """A compiled model for one trial; ``train`` is the training split (for statistics).
        Its compiled metrics name what it reports: ``metrics=[keras.metrics.AUC(name="auc")]``
        is reported as ``val_auc``."""

    def xy(self, frame: pd.DataFrame, schema: Schema) -> tuple[dict[str, Any], Any]:
        """A split as the model takes it: a dict of 1-D arrays keyed by feature column
        (numbers as float32, categories as strings) and the target (the value for regression,
        0/1 for two classes, one-hot rows for more; see :func:`trainable.tabular.xy`)."""
        from trainable.tabular import xy

        return xy(frame, schema)

    def callbacks(self, config: Mapping[str, Any]) -> list[keras.callbacks.Callback]:
        """Keras callbacks of the family's own for one trial (e.g. a learning-rate schedule),
        run each epoch before early stopping and the reporting to Tune. Default: none."""
        return []

    # ------------------------------------------------------------ training (inside a trial)

    def train(
        self,
        config: Mapping[str, Any],
        data: Splits,
        objective: Objective,
        stop_epochs: Collection[int] = (),
    ) -> None:
        """One ``model.fit``, reporting every epoch to Ray Tune (see
        :class:`~trainable.callbacks.TuneReporter`); a retried trial resumes from its last
        checkpoint, and a finished one (all epochs, or stopped early) does nothing."""
        from ray import tune

        _configure_tensorflow(_assigned_cpus())
        import keras

        from trainable.callbacks import LATEST_FILE, ResumedEarlyStopping, TuneReporter
        from trainable.model_cost import ModelCost
        from trainable.pipeline import fit_inputs

        # Actors are reused between trials: drop the previous trial's models and traced graphs.
        # free_memory=False skips a full gc.collect() (about 0.3 s per trial); Python's own
        # collector frees the same objects soon after.
        keras.backend.clear_session(free_memory=False)

        seed = int(config.get("seed", 0))
        batch_size = int(config.get("batch_size", DEFAULT_BATCH_SIZE))
        train, val = fit_inputs(data, batch_size, seed, self.xy)
        epochs = int(config.get("epochs", DEFAULT_EPOCHS))
        patience = int(config.get("patience", DEFAULT_PATIENCE))

        state: dict[str, Any] = {"epoch": 0, "best_value": objective.worst, "best_epoch": 0}
        best_weights = None
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as folder:
                model = self.load(folder)
                best_weights = model.get_weights()
                latest = os.path.join(folder, LATEST_FILE)
                if os.path.exists(latest):  # training goes on from the latest epoch
                    model = keras.models.load_model(latest)
                with open(os.path.join(folder, self.state_file)) as fh:
                    state.update(json.load(fh))
        else:
            keras.utils.set_random_seed(seed)
            model = self.build(config, data.schema, data.train)

        if state.get("stopped_early") or state["epoch"] >= epochs:
            return
        model.fit(
            train,
            validation_data=val,
            epochs=epochs,
            shuffle=False,  # the pipeline shuffles
            initial_epoch=int(state["epoch"]),
            verbose=0,
            callbacks=[
                *self.callbacks(config),
                # Before the reporter, which checks whether early stopping ended training.
                ResumedEarlyStopping(
                    state, monitor=objective.metric, patience=patience, mode=objective.mode
                ),
                TuneReporter(
                    state,
                    objective,
                    self.model_file,
                    self.state_file,
                    stop_epochs=stop_epochs,
                    best_weights=best_weights,
                    extra=ModelCost(self.xy(data.val, data.schema)[0]),
                ),
            ],
        )

    # ------------------------------------------------------------ the best model (registration)

    def load(self, checkpoint_dir: str) -> keras.Model:
        """The Keras model saved in a checkpoint folder."""
        import keras

        return keras.models.load_model(os.path.join(checkpoint_dir, self.model_file))

    def evaluate(self, model: keras.Model, test: pd.DataFrame, schema: Schema) -> dict[str, float]:
        """The model's compiled loss and metrics on ``test``, as ``test_<name>``."""
        from trainable.pipeline import input_pipeline

        x, y = self.xy(test, schema)
        results = model.evaluate(input_pipeline(x, y, 1024), verbose=0, return_dict=True)
        return {f"test_{name}": float(value) for name, value in results.items()}

    def log_model(
        self,
        model: keras.Model,
        schema: Schema,
        name: str,
        input_example: pd.DataFrame,
        registered_model_name: str | None,
    ) -> Any:
        """Log as a pyfunc model that predicts from a DataFrame (see :mod:`trainable.serving`)."""
        from trainable.serving import log_tabular_keras_model

        return log_tabular_keras_model(
            model,
            [(c.name, c.categorical) for c in schema.features],
            schema.task,
            schema.classes,
            name,
            input_example,
            registered_model_name,
        )

    def average(self, models: Sequence[keras.Model]) -> keras.Model:
        """One Keras model on the same inputs whose output is the mean of ``models``' outputs,
        compiled like the first (same loss and metrics, so :meth:`evaluate` names its results
        as for one model). The models are used as they are, not copied."""
        import keras

        first = models[0]
        inputs = keras.tree.map_structure(
            lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name), first.input
        )
        names = [model.name for model in models]
        try:
            for i, model in enumerate(models):  # nested models need names unique in the graph
                model.name = f"member_{i}"
            outputs = [model(inputs) for model in models]
            averaged = keras.Model(inputs, keras.layers.Average()(outputs), name="ensemble")
        finally:
            for model, name in zip(models, names, strict=True):
                model.name = name
        averaged.compile_from_config(first.get_compile_config())
        return averaged


def _assigned_cpus() -> int:
    import ray

    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:  # not inside a Ray worker (e.g. called directly)
        cpus = 1
    return max(1, int(cpus))


def _configure_tensorflow(cpus: int) -> None:
    """TF threads follow the trial's CPUs; GPU memory grows on demand (several trials per GPU).

    Both must be set before TensorFlow's runtime starts; a reused actor already has them.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(cpus)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # runtime already initialised by an earlier trial in this (reused) actor


__all__ = ["DEFAULT_PATIENCE", "MODEL_FILE", "STATE_FILE", "KerasFamily"]
