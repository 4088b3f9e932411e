"""``register.ensemble``: the best trials' models registered as one model, in the registrar's
child process (:mod:`sweeps.registration.__main__` calls :func:`register` for every job).

Each member is loaded, scored on the test split and logged by its family exactly as a single
best model is (into its own trial's child run, not registered); the ensemble
(:class:`trainable.ensemble.EnsembleModel`) holds those logged models as artifacts, is scored
with the family's own ``evaluate`` on :meth:`~trainable.contract.ModelFamily.average` of the
members, logged into the sweep's parent run and registered. Its version carries the
ensemble's test metrics, so the champion rule (:func:`~sweeps.registration.registry.promote`)
compares what is registered. The parent run gets the single best's test metrics (as without
an ensemble) and the ensemble's, prefixed ``ensemble_``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from typing import TYPE_CHECKING

from sweeps.registration.registry import (
    MODEL_ARTIFACT,
    Registration,
    check_champion_metric,
    log_parent_metrics,
    record_version,
    register_best,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from sweeps.registration.job import RegistrationJob
    from trainable.contract import ModelFamily

#: Prefix of the ensemble's test metrics on the parent run (next to the single best's).
ENSEMBLE_PREFIX = "ensemble_"
#: Parent run tags: the members (``trial-0007:<child run id>,...``, best first), and why the
#: ensemble is smaller than asked or absent.
TAG_PARENT_MEMBERS = "sweep.ensemble_members"
TAG_PARENT_NOTE = "sweep.ensemble_note"
#: Model version tags of an ensemble: its members as on the parent, and their checkpoints.
TAG_MEMBERS = "ensemble_members"
TAG_CHECKPOINTS = "ensemble_checkpoint_uris"


def register(client: MlflowClient, family: ModelFamily, job: RegistrationJob) -> Registration:
    """Register what ``job`` asks for: the ensemble of its members (two or more), else the
    single best model exactly as without ``register.ensemble``. A family that cannot average
    its models gets the single best too; the job's note (or that reason) is tagged on the
    parent run and returned with the registration."""
    if len(job.members) >= 2:
        try:
            return register_ensemble(client, family, job)
        except NotImplementedError as exc:  # raised before anything is logged
            job = replace(job, members=(), note=f"{exc}: the single best model is registered")
    registration = register_best(
        client,
        family,
        job.checkpoint_dir,
        job.test,
        job.schema,
        job.lineage,
        job.model_name,
        job.alias,
        job.champion,
    )
    if job.note:
        client.set_tag(job.lineage.sweep_run_id, TAG_PARENT_NOTE, job.note)
        registration = replace(registration, note=job.note)
    return registration


def register_ensemble(
    client: MlflowClient, family: ModelFamily, job: RegistrationJob
) -> Registration:
    """Score, log and register the ensemble of ``job.members`` (best first); see the module doc.

    Raises:
        NotImplementedError: the family cannot average its models (nothing logged yet).
    """
    import mlflow
    from mlflow.artifacts import download_artifacts

    from sweeps.quiet import native_stderr_silenced
    from trainable.ensemble import log_ensemble

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    members, schema, test, lineage = job.members, job.schema, job.test, job.lineage
    with native_stderr_silenced():
        models = [family.load(member.checkpoint_dir) for member in members]
        scores = [family.evaluate(model, test, schema) for model in models]
        combined = family.evaluate(family.average(models), test, schema)
    check_champion_metric(family, combined, job.champion)
    example = test[schema.feature_names].head(5).reset_index(drop=True)
    mlflow.set_tracking_uri(client.tracking_uri)
    with tempfile.TemporaryDirectory(prefix="sweep-ensemble-") as scratch:
        folders = []
        for i, (member, model, metrics) in enumerate(zip(members, models, scores, strict=True)):
            with mlflow.start_run(run_id=member.trial_run_id):
                mlflow.log_metrics(metrics)
                logged = family.log_model(model, schema, MODEL_ARTIFACT, example, None)
            folders.append(download_artifacts(logged.model_uri, dst_path=f"{scratch}/{i}"))
        info = log_ensemble(
            folders, schema.task, MODEL_ARTIFACT, example, job.model_name, lineage.sweep_run_id
        )
    version = str(info.registered_model_version)
    listed = ",".join(member.label for member in members)
    ensemble_metrics = {ENSEMBLE_PREFIX + k: v for k, v in combined.items()}
    log_parent_metrics(client, lineage.sweep_run_id, {**scores[0], **ensemble_metrics})
    client.set_tag(lineage.sweep_run_id, TAG_PARENT_MEMBERS, listed)
    if job.note:
        client.set_tag(lineage.sweep_run_id, TAG_PARENT_NOTE, job.note)
    tags = {
        **lineage.tags(),
        TAG_MEMBERS: listed,
        TAG_CHECKPOINTS: ",".join(member.checkpoint_uri for member in members),
    }
    registration = record_version(
        client, job.model_name, version, job.alias, job.champion, combined, tags
    )
    return replace(
        registration,
        members=tuple(member.number for member in members),
        single_metrics=scores[0],
        note=job.note,
    )


__all__ = ["ENSEMBLE_PREFIX", "TAG_MEMBERS", "TAG_PARENT_MEMBERS", "register"]
