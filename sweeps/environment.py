"""Environment defaults, defined once: for this process (before Ray, Tune or TensorFlow are
imported) and for the processes the driver starts (Ray workers, the registrar's child).
A value the user set in the environment always wins."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

#: Always, before Ray, Tune or TensorFlow are imported: no usage stats, a quiet TensorFlow
#: start-up, and no Tune CSV or TensorBoard loggers (they cost the driver CPU on every reported
#: epoch while the trials compete for the same cores; the MLflow runs are the record).
BASE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # MLflow prints a "View run ... at: URL" line whenever a run on a server ends; the
    # sweep's own output names its runs.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}

#: Also, unless the user asked for Ray's own output (``-v``).
QUIET_ENV = {
    **BASE_ENV,
    "RAY_AIR_NEW_OUTPUT": "0",  # the legacy reporter honours verbose=0 (the new one prints boxes)
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


#: For processes the driver starts (Ray workers, the registrar's child): quiet TensorFlow
#: start-up and no library warnings in their logs.
CHILD_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}


def child_env() -> dict[str, str]:
    """:data:`CHILD_ENV`, with any value the user set in this environment kept."""
    return {key: os.environ.get(key, value) for key, value in CHILD_ENV.items()}


def set_defaults(values: dict[str, str] = BASE_ENV) -> None:
    """``values`` (:data:`BASE_ENV`) in this process, where the user has not set them."""
    for key, value in values.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def temporarily(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in this process's environment inside the block, as before after it."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
