"""Keep library chatter off the user's terminal: log filters, warnings, and C++ lines written
straight to the standard error."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

from sweeps.environment import QUIET_ENV, set_defaults


class _DropMessages(logging.Filter):
    def __init__(self, *needles: str) -> None:
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.needles)


def quiet_libraries() -> None:
    """Environment defaults and filters for a clean terminal (a user's explicit env wins)."""
    set_defaults(QUIET_ENV)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow(\..*)?")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    import ray  # noqa: F401 - creates the "ray" logger's handler that we filter

    noise = _DropMessages(
        "Token authentication is enabled",
        # Timing notes on Tune's state snapshots (a failed snapshot is still shown).
        "Experiment state snapshotting took",
        "Experiment state snapshotting has been triggered",
        # Tune's notes on an interrupted run; the sweep says how to resume it instead.
        "Stop signal received",
        "Experiment has been interrupted",
    )
    for handler in logging.getLogger("ray").handlers:
        handler.addFilter(noise)


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Silence C++ log lines (TensorFlow's absl start-up banner) written straight to fd 2."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
