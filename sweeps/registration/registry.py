"""The best trial's model: test-split evaluation, logging, registration, champion alias.

What the model is, how it is loaded, evaluated and logged is its family's business (see
:mod:`trainable.contract`); this module records the result and decides the alias.
:func:`register_best` loads the family's model (TensorFlow for a Keras family), so it runs in
the registrar's child process (:mod:`sweeps.registration.registrar`), never in the driver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trainable.contract import ModelFamily, Objective, Schema

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

MODEL_ARTIFACT = "model"
TAG_CHAMPION_METRIC = "champion_metric"
CONTAINER_IMAGE_VARS = ("SWEEP_CONTAINER_IMAGE", "CONTAINER_IMAGE", "DLC_IMAGE")


@dataclass(frozen=True)
class Registration:
    """What was registered and what happened to the alias."""

    model_name: str
    version: str
    alias: str
    alias_moved: bool
    previous_version: str | None
    previous_value: float | None  # the previous holder's value of ``metric``
    metric: str  # what the alias follows, a test metric of the family
    metrics: dict[str, float]  # every test metric of this version
    model_uri: str
    members: tuple[int, ...] = ()  # an ensemble's trial numbers, best first (empty: one model)
    single_metrics: dict[str, float] = field(default_factory=dict)  # an ensemble's best member
    note: str | None = None  # why an ensemble that was asked for is smaller, or absent

    @property
    def value(self) -> float:
        """This version's value of :attr:`metric`."""
        return self.metrics[self.metric]


@dataclass(frozen=True)
class Lineage:
    """Where a registered version came from; stored as model version tags."""

    sweep_run_id: str
    trial_run_id: str
    data_sha256: str
    spec_sha256: str
    checkpoint_uri: str
    git_commit: str | None = None

    def tags(self) -> dict[str, str]:
        tags = {
            "sweep_run_id": self.sweep_run_id,
            "trial_run_id": self.trial_run_id,
            "data_sha256": self.data_sha256,
            "spec_sha256": self.spec_sha256,
            "checkpoint_uri": self.checkpoint_uri,
        }
        if self.git_commit:
            tags["git_commit"] = self.git_commit
        image = next((os.environ[v] for v in CONTAINER_IMAGE_VARS if os.environ.get(v)), None)
        if image:
            tags["container_image"] = image
        return tags


def register_best(
    client: MlflowClient,
    family: ModelFamily,
    checkpoint_dir: str,
    test: pd.DataFrame,
    schema: Schema,
    lineage: Lineage,
    model_name: str,
    alias: str,
    champion: Objective,
) -> Registration:
    """Evaluate the family's model in ``checkpoint_dir`` on the ``test`` split, log it into the
    trial's child run (with the family's signature and a few test rows as input example),
    register it, tag its lineage and test metrics, and move ``alias`` only if the version is
    better than the current holder by ``champion`` (a test metric and its mode)."""
    import mlflow

    from sweeps.quiet import native_stderr_silenced

    with native_stderr_silenced():
        model = family.load(checkpoint_dir)
        metrics = family.evaluate(model, test, schema)
    check_champion_metric(family, metrics, champion)
    example = test[schema.feature_names].head(5).reset_index(drop=True)
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=lineage.trial_run_id):
        mlflow.log_metrics(metrics)
        info = family.log_model(model, schema, MODEL_ARTIFACT, example, model_name)
    version = str(info.registered_model_version)
    log_parent_metrics(client, lineage.sweep_run_id, metrics)
    return record_version(client, model_name, version, alias, champion, metrics, lineage.tags())


def check_champion_metric(
    family: ModelFamily, metrics: dict[str, float], champion: Objective
) -> None:
    """Raise KeyError unless the family's test ``metrics`` hold the champion's metric."""
    if champion.metric not in metrics:
        raise KeyError(
            f"register.metric {champion.metric!r} is not among the test metrics of "
            f"{type(family).__name__}: {', '.join(sorted(metrics))}"
        )


def record_version(
    client: MlflowClient,
    model_name: str,
    version: str,
    alias: str,
    champion: Objective,
    metrics: dict[str, float],
    tags: dict[str, str],
) -> Registration:
    """Tag a registered ``version`` with ``tags``, its test ``metrics`` and the champion rule,
    then move ``alias`` to it if it beats the holder (:func:`promote`)."""
    tags = {**tags, **{k: repr(v) for k, v in metrics.items()}}
    tags[TAG_CHAMPION_METRIC] = f"{champion.metric} ({champion.mode})"
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    value = metrics[champion.metric]
    moved, prev_version, prev_value = promote(client, model_name, alias, version, champion, value)
    return Registration(
        model_name=model_name,
        version=version,
        alias=alias,
        alias_moved=moved,
        previous_version=prev_version,
        previous_value=prev_value,
        metric=champion.metric,
        metrics=metrics,
        model_uri=f"models:/{model_name}/{version}",
    )


def log_parent_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    """``metrics`` on run ``run_id`` (the sweep's parent run), in one request."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])


def promote(
    client: MlflowClient,
    model_name: str,
    alias: str,
    version: str,
    champion: Objective,
    value: float,
) -> tuple[bool, str | None, float | None]:
    """Point ``alias`` at ``version`` if nothing holds it yet or ``value`` is better (by
    ``champion``) than the holder's tag of the same metric; a holder without that tag (e.g.
    registered under another rule) is beaten. Returns (moved, previous version, its value).

    Only the registered model's own alias list says "nothing holds it": any failure to read it
    is raised, never taken for "no champion yet".
    """
    holder = client.get_registered_model(model_name).aliases.get(alias)
    if holder is None:
        client.set_registered_model_alias(model_name, alias, version)
        return True, None, None
    current = client.get_model_version(model_name, str(holder))
    try:
        current_value = float(current.tags[champion.metric])
    except (KeyError, ValueError):
        current_value = None
    if str(current.version) != version and champion.better(value, current_value):
        client.set_registered_model_alias(model_name, alias, version)
        return True, str(current.version), current_value
    return False, str(current.version), current_value


__all__ = [
    "Lineage",
    "Registration",
    "check_champion_metric",
    "log_parent_metrics",
    "promote",
    "record_version",
    "register_best",
]
