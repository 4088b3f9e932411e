"""The contract between the sweeper's driver (``sweeps/``) and a model family (the worker side).

The driver owns search, scheduling, tracking, registration and the CLI; a **model family** owns
everything about one kind of model. The two meet only here, so a new family is new files
only: a module defining a family and a spec naming it (``trainable: MODULE:ATTR``).

What a family provides (see :class:`ModelFamily`; :class:`~trainable.keras_family.KerasFamily`
implements all of it for a compiled Keras model, so a Keras family only writes ``build``):

``task``
    ``"regression"`` or ``"classification"``.
``schema``
    Its data schema (:class:`Schema`: feature columns with types, categorical columns with
    their allowed values, the target), or None when the spec declares it (``data.features``,
    ``data.target``) or the table's own columns are to be used. The spec's declaration wins.
``default_source``
    The table used when the spec names none (``builtin:NAME``, a path or ``s3://`` URI), or None.
``metrics``
    The names of the metrics it reports every epoch (``val_rmse``, ``val_auc``, ...). The
    spec's ``search.metric`` must be one of them.
``train(config, data, objective, stop_epochs)``
    Runs inside one Ray Tune trial: builds a model from the trial's ``config`` (the sampled
    hyperparameters and the space's constants), trains it on ``data.train`` / ``data.val``
    and reports its epochs with ``ray.tune.report(metrics)``, ``metrics["epoch"]`` counting
    from 1: at least at each of ``stop_epochs`` (the scheduler's rungs, where it may stop the
    trial: a trial stopped there gets no later report) and at its last epoch. Epochs between
    two reports may ride along with the next one, as a list of their metrics under
    :data:`EARLIER_EPOCHS` (each report makes the trial wait for the driver, so reporting
    every epoch slows short epochs); :func:`reported_epochs` unpacks them. It follows
    ``objective`` (early stopping, which epoch is best) and keeps the trial's newest
    checkpoint holding its best model so far, written at least at each of ``stop_epochs``
    and at its last epoch. A retried trial (``ray.tune.get_checkpoint()`` not None) resumes.
``load(checkpoint_dir)``
    The model saved in a checkpoint folder written by ``train``.
``evaluate(model, test, schema)``
    Metrics of the model on the held-out test rows, named ``test_<name>`` for every
    ``val_<name>`` it reports (``test_rmse`` for ``val_rmse``), so the champion rule can
    follow the same objective.
``log_model(model, schema, name, input_example, registered_model_name)``
    Log the model into the active MLflow run and register it (``registered_model_name`` None:
    log it only); returns MLflow's ``ModelInfo``. The logged model must predict from a pandas
    DataFrame of raw feature columns.
``average(models)`` (optional)
    One model, in the form ``evaluate`` takes, whose output is the mean of ``models``'
    outputs: how ``register.ensemble`` scores an ensemble on the test split. It must agree
    with :func:`trainable.ensemble.combine` on what the logged models predict. Without it, a
    sweep asking for an ensemble registers the single best model and says why.

Importing a family's module must stay cheap (no TensorFlow at import): the driver imports it
to check the spec, and ``sweep validate`` never loads TensorFlow.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from trainable.tables import Splits

Task = Literal["regression", "classification"]
#: The key of a report holding the metrics of the epochs since the previous report.
EARLIER_EPOCHS = "earlier_epochs"
#: A report's running best of a metric, if the family reports one: this prefix + its name.
BEST_PREFIX = "best_"


def epoch_of(result: Mapping[str, Any]) -> int:
    """The epoch a report is for (Tune's report count, ``training_iteration``, for a family
    that reports no ``epoch``)."""
    return int(result.get("epoch", result.get("training_iteration", 0)))


def reported_epochs(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every epoch one report of a trial carries, oldest first: the epochs that rode along
    (:data:`EARLIER_EPOCHS`), then the report's own metrics."""
    own = {k: v for k, v in result.items() if k != EARLIER_EPOCHS}
    earlier = result.get(EARLIER_EPOCHS) or []
    return [*(dict(epoch) for epoch in earlier), own]


NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class Column:
    """One feature column: numeric, or categorical with its allowed values.

    ``values`` empty for a categorical column means "whatever the table holds" (taken from
    the table when it is loaded, see :func:`trainable.tables.load_dataset`).
    """

    name: str
    kind: Literal["numeric", "categorical"] = NUMERIC
    values: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        return self.kind == CATEGORICAL


@dataclass(frozen=True)
class Schema:
    """A family's table: feature columns, target column, task kind and, for classification,
    the class labels in the order of the model's outputs (from the table if not declared)."""

    features: tuple[Column, ...]
    target: str
    task: Task = "regression"
    classes: tuple[Any, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.features if not c.categorical]

    @property
    def categorical(self) -> list[Column]:
        return [c for c in self.features if c.categorical]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.features if c.name == name), None)

    def with_(self, **changes: Any) -> Schema:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Objective:
    """What a sweep optimises: one metric and whether lower or higher is better.

    Read once from the spec (``search.metric`` + ``search.mode``); everything that compares
    two values (early stopping, checkpoints, the scheduler, the best trial, the views, the
    summary plots, the champion rule) asks this object.
    """

    metric: str
    mode: Literal["min", "max"] = "min"

    @property
    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    @property
    def direction(self) -> str:
        """Optuna's name for the mode."""
        return "minimize" if self.mode == "min" else "maximize"

    def better(self, value: float | None, than: float | None) -> bool:
        """Whether ``value`` is strictly better than ``than`` (None or NaN is worst)."""
        if value is None or math.isnan(value):
            return False
        if than is None or math.isnan(than):
            return True
        return value < than if self.mode == "min" else value > than

    def key(self, value: float | None) -> float:
        """A sort key putting the best value first (None and NaN last)."""
        if value is None or math.isnan(value):
            return math.inf
        return value if self.mode == "min" else -value

    def best(self, values: Iterable[float | None]) -> float | None:
        """The best of ``values`` (None if there is none)."""
        finite = [v for v in values if v is not None and not math.isnan(v)]
        return min(finite, key=self.key) if finite else None

    @property
    def test_metric(self) -> str:
        """The same metric on the held-out test split: ``val_mae`` -> ``test_mae``."""
        return held_out_name(self.metric)

    def on(self, metric: str) -> Objective:
        """Another metric with the same mode."""
        return Objective(metric, self.mode)


def held_out_name(metric: str) -> str:
    """How :meth:`ModelFamily.evaluate` names a reported metric: ``val_auc`` -> ``test_auc``."""
    return "test_" + metric.removeprefix("val_")


class ModelFamily(ABC):
    """What the sweeper tunes: one kind of model on one kind of table (see the module doc)."""

    #: ``"regression"`` or ``"classification"``.
    task: Task = "regression"
    #: The family's own schema; None: the spec declares it or the table's columns are used.
    schema: Schema | None = None
    #: The table used when the spec names no ``data.source``.
    default_source: str | None = None
    #: Metrics reported every epoch; ``search.metric`` must be one of them (empty: unchecked).
    metrics: tuple[str, ...] = ()

    @property
    def test_metrics(self) -> tuple[str, ...]:
        """What :meth:`evaluate` returns for :attr:`metrics` (``val_rmse`` -> ``test_rmse``)."""
        return tuple(held_out_name(m) for m in self.metrics)

    @abstractmethod
    def train(
        self,
        config: Mapping[str, Any],
        data: Splits,
        objective: Objective,
        stop_epochs: Collection[int] = (),
    ) -> None:
        """One trial: build, train, report every epoch and checkpoint the best model."""

    @abstractmethod
    def load(self, checkpoint_dir: str) -> Any:
        """The model stored in a checkpoint folder written by :meth:`train`."""

    def warm_up(self) -> None:
        """Import now what :meth:`load`, :meth:`evaluate` and :meth:`log_model` will need (the
        registration process calls this while the trials still run). Default: nothing."""
        return None

    @abstractmethod
    def evaluate(self, model: Any, test: pd.DataFrame, schema: Schema) -> dict[str, float]:
        """``test_<name>`` metrics of ``model`` on the test rows (features and target)."""

    @abstractmethod
    def log_model(
        self,
        model: Any,
        schema: Schema,
        name: str,
        input_example: pd.DataFrame,
        registered_model_name: str | None,
    ) -> Any:
        """Log ``model`` into the active MLflow run, registered under ``registered_model_name``
        (None: not registered); returns MLflow's ModelInfo."""

    def average(self, models: Sequence[Any]) -> Any:
        """A model (as :meth:`evaluate` takes it) whose output is the mean of ``models``'
        outputs, to score an ensemble of them. Default: the family cannot average models."""
        raise NotImplementedError(f"{type(self).__name__} does not average models")


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a sweep receives besides its config (put in Ray's object store
    once, not re-sent per trial)."""

    family: ModelFamily
    data: Splits
    objective: Objective
    stop_epochs: tuple[int, ...] = field(default_factory=tuple)


def run_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """The Ray Tune function trainable: one trial of ``setup.family``."""
    setup.family.train(config, setup.data, setup.objective, setup.stop_epochs)


__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "Column",
    "ModelFamily",
    "Objective",
    "Schema",
    "Task",
    "TrialSetup",
    "run_trial",
    "held_out_name",
]
