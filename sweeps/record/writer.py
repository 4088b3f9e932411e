"""A background writer for MLflow calls: ordered, off the Tune loop, retried through outages."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


#: MLflow error codes that a retry cannot fix (the request itself is wrong).
PERMANENT_ERROR_CODES = frozenset(
    {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST"}
)


def is_retriable(exc: Exception) -> bool:
    """Connection problems and server errors are retried; a rejected request is not."""
    code = getattr(exc, "error_code", None)
    return code not in PERMANENT_ERROR_CODES


@dataclass
class _Op:
    name: str
    fn: Callable[[], None]


class BackgroundWriter:
    """Runs submitted calls one at a time, in order, on a daemon thread.

    A call that raises is retried with backoff (``retry_initial_s`` doubling up to
    ``retry_max_s``) until it succeeds, so a tracking server that is down for a while delays
    logging but loses nothing. ``flush`` waits for everything submitted so far.
    """

    def __init__(self, retry_initial_s: float = 0.5, retry_max_s: float = 15.0) -> None:
        self._queue: queue.Queue[_Op | None] = queue.Queue()
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._pending = 0
        self._lock = threading.Condition()
        self._closed = False
        self.dropped: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="mlflow-writer", daemon=True)
        self._thread.start()

    def submit(self, name: str, fn: Callable[[], None]) -> None:
        """Queue ``fn``; ``name`` describes it in warnings."""
        with self._lock:
            if self._closed:
                raise RuntimeError("writer is closed")
            self._pending += 1
        self._queue.put(_Op(name, fn))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every submitted call has run; False if ``timeout_s`` passed first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(remaining if remaining is not None else 1.0)
        return True

    def close(self, timeout_s: float | None = None) -> bool:
        """Flush, then stop the thread. Returns whether everything was written."""
        done = self.flush(timeout_s)
        with self._lock:
            self._closed = True
        self._queue.put(None)
        return done

    def _loop(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                return
            delay = self._retry_initial_s
            while True:
                try:
                    op.fn()
                    break
                except Exception as exc:  # noqa: BLE001 - decided by is_retriable
                    if not is_retriable(exc):
                        self.dropped.append(f"{op.name}: {type(exc).__name__}: {exc}")
                        log.error("MLflow %s failed and was dropped: %s", op.name, exc)
                        break
                    log.warning("MLflow %s failed, retrying in %.1fs: %s", op.name, delay, exc)
                    time.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()
