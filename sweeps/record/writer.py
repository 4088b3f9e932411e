"""A background writer for MLflow calls: ordered, off the Tune loop, retried through outages."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


#: HTTP statuses worth another try: the server is overloaded, restarting or briefly away.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_retriable(exc: BaseException) -> bool:
    """Transient failures are retried: no connection, a timeout, an HTTP 5xx or 429 (MLflow's
    client reports a refused connection as an error with status 500), a locked SQLite store.
    Anything else (a request the server rejects, a bug such as a ``KeyError``) is not: a retry
    would fail the same way forever."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        return exc.get_http_status_code() in TRANSIENT_STATUSES
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # SQLAlchemy's OperationalError: "database is locked" and its kin.
    return type(exc).__name__ == "OperationalError"


@dataclass
class _Op:
    name: str
    fn: Callable[[], None]
    finished: Callable[[], None] | None = None  # after it succeeded or was dropped


class BackgroundWriter:
    """Runs submitted calls one at a time, in order, on a daemon thread.

    A call that fails transiently (:func:`is_retriable`) is retried with backoff
    (``retry_initial_s`` doubling up to ``retry_max_s``) until it succeeds, so a tracking server
    that is down for a while delays logging but loses nothing; any other failure drops the call
    at once and records it in ``dropped``. ``flush`` waits for everything submitted so far;
    ``pending`` names the calls not yet done.
    """

    def __init__(self, retry_initial_s: float = 0.5, retry_max_s: float = 15.0) -> None:
        self._queue: queue.Queue[_Op | None] = queue.Queue()
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._pending = 0
        self._waiting: list[str] = []  # names of the calls not yet done, oldest first
        self._lock = threading.Condition()
        self._closed = False
        self._outage = False  # a call is being retried
        self.dropped: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="mlflow-writer", daemon=True)
        self._thread.start()

    def submit(
        self, name: str, fn: Callable[[], None], finished: Callable[[], None] | None = None
    ) -> None:
        """Queue ``fn``; ``name`` describes it in warnings; ``finished`` is called once ``fn``
        succeeded or was dropped."""
        with self._lock:
            if self._closed:
                raise RuntimeError("writer is closed")
            self._pending += 1
            self._waiting.append(name)
        self._queue.put(_Op(name, fn, finished))

    @property
    def pending(self) -> list[str]:
        """The names of the calls submitted but not yet done, oldest first."""
        with self._lock:
            return list(self._waiting)

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
                    self._outage = False
                    break
                except Exception as exc:  # noqa: BLE001 - decided by is_retriable
                    if not is_retriable(exc):
                        self.dropped.append(f"{op.name}: {type(exc).__name__}: {exc}")
                        log.error("MLflow %s failed and was dropped: %s", op.name, exc)
                        break
                    # One warning per outage; the retries go on quietly until MLflow answers.
                    level = logging.INFO if self._outage else logging.WARNING
                    self._outage = True
                    log.log(level, "MLflow %s failed, retrying in %.1fs: %s", op.name, delay, exc)
                    time.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)
            if op.finished is not None:
                try:
                    op.finished()
                except Exception as exc:  # noqa: BLE001 - never stop the writer's thread
                    log.error("after MLflow %s: %s", op.name, exc)
            with self._lock:
                self._pending -= 1
                self._waiting.remove(op.name)
                self._lock.notify_all()
