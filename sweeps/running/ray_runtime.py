"""The driver's Ray: join a cluster or start a private local one, and stop that one off the
critical path once the trials are done."""

from __future__ import annotations

import gc
import logging
import os
import threading
from typing import Any

from sweeps.environment import child_env, set_defaults, temporarily

_started_here = False
_stopping: threading.Thread | None = None


def init_ray(verbose: bool = False) -> None:
    """Connect to ``RAY_ADDRESS`` if set, else start a local Ray (unless one is running here)."""
    global _started_here
    import ray

    if ray.is_initialized():
        return
    set_defaults()
    address = os.environ.get("RAY_ADDRESS")
    options: dict[str, Any] = {
        # "local" starts a private Ray; None would silently join any cluster `ray start` left.
        "address": address or "local",
        "include_dashboard": False,
        "log_to_driver": verbose,
        "logging_level": logging.INFO if verbose else logging.WARNING,
    }
    if address:
        # A running cluster's workers did not inherit this environment.
        ray.init(**options, runtime_env={"env_vars": child_env()})
        return
    # A local Ray's workers inherit the environment of the raylet ray.init starts. No job
    # runtime_env: Ray then hands its prestarted workers to the trial actors instead of
    # starting new processes (about 1 s less before the first trial).
    with temporarily(child_env()):
        ray.init(**options)
    _started_here = True


def stop_local_ray_in_background(wait: bool = False) -> None:
    """Begin stopping the local Ray :func:`init_ray` started (about 1.5 s, mostly waiting for
    its processes to exit) while the driver goes on; a joined cluster is left alone.

    ``wait``: stop it before returning. A sweep ended early (``search.stop``, a time budget)
    leaves Tune's refs to its stopped trials behind; freed by the main thread while a
    background shutdown runs, one reaches a core worker that is gone, and Ray ends the process.
    """
    global _stopping, _started_here
    import ray

    if not _started_here or _stopping is not None or not ray.is_initialized():
        return
    _started_here = False
    if wait:
        gc.collect()
        ray.shutdown()
        return
    _stopping = threading.Thread(target=ray.shutdown, name="ray-shutdown", daemon=True)
    _stopping.start()


def wait_for_ray_to_stop() -> None:
    """Block until a shutdown begun by :func:`stop_local_ray_in_background` has finished."""
    global _stopping
    if _stopping is not None:
        _stopping.join()
        _stopping = None
