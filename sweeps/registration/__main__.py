"""The registrar's child process, a job of its own:
``python -m sweeps.registration TRACKING_URI MODULE:ATTR [SPEC_FOLDER]``.

As soon as it starts it imports MLflow, opens the MLflow client, loads the model family (whose
module may register custom objects needed to load the model) and lets it import what its
models need (``ModelFamily.warm_up``: TensorFlow and Keras for a Keras family, nothing
otherwise), then waits for one job: the path of a pickled
:class:`~sweeps.registration.job.RegistrationJob` on stdin. It writes the
:class:`~sweeps.registration.registry.Registration` beside the job as ``.out``. Nothing here
imports Ray: the start-up is only what registration needs.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sweeps.registration.job import RegistrationJob

if TYPE_CHECKING:
    from trainable.contract import ModelFamily


def warm_up(tracking_uri: str, trainable: str, folder: str | None = None):
    """Everything that does not depend on the job; returns the MLflow client and the family."""
    import mlflow.pyfunc  # noqa: F401

    from sweeps.quiet import native_stderr_silenced
    from sweeps.record.client import make_client
    from sweeps.running.preflight import load_family

    with native_stderr_silenced():  # TensorFlow's start-up noise, for a Keras family
        family: ModelFamily = load_family(trainable, folder)
        family.warm_up()
    return make_client(tracking_uri), family


def _map_installed_packages() -> None:
    """log_model checks the model's requirements against every installed package; the map it
    builds for that (about a second) does not depend on the model, so build it beforehand."""
    try:
        from mlflow.utils.requirements_utils import _init_packages_to_modules_map

        _init_packages_to_modules_map()
    except Exception:  # noqa: BLE001 - a private MLflow helper; this is only an optimisation
        pass


def main(argv: list[str]) -> int:
    """Warm up, then run the one job named on stdin (none: the sweep had nothing to register):
    the best model, or the best trials' ensemble (:func:`sweeps.registration.ensemble.register`)."""
    from sweeps.registration.ensemble import register

    tracking_uri, trainable, *folder = argv
    client, family = warm_up(tracking_uri, trainable, folder[0] if folder else None)
    waiting = threading.Thread(target=_map_installed_packages, daemon=True)
    waiting.start()  # uses the time until the job arrives, if there is any
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    waiting.join()
    job: RegistrationJob = pickle.loads(Path(line).read_bytes())
    registration = register(client, family, job)
    Path(line).with_suffix(".out").write_bytes(pickle.dumps(registration))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip TensorFlow's interpreter teardown (about 1.5 s)
