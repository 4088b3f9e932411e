"""The driver's lease on its sweep folder: while a driver runs a sweep, ``sweep resume`` of
the same sweep is refused, so two drivers never run (and clean up) one sweep's trials.

The lease is a small file in the sweep's storage folder (local or ``s3://``) naming the
driver's host and process, refreshed every :data:`HEARTBEAT_S` seconds and deleted when the
driver ends. A lease is held while its process is alive (same host) or, seen from another
host, while its heartbeat is younger than :data:`STALE_S` seconds; a driver killed with
SIGKILL leaves a lease that is no longer held.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sweeps.errors import UserError
from sweeps.running import storage

LEASE_FILE = "driver-lease.json"
HEARTBEAT_S = 10.0
STALE_S = 45.0


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (to tell a reused pid apart), None if there is none."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def holder(state: dict[str, Any], now: float | None = None) -> str | None:
    """Who holds the lease ``state`` describes (a line for the user), None if nobody does."""
    now = time.time() if now is None else now
    host, pid = state.get("host"), int(state.get("pid", 0))
    if host == socket.gethostname():
        started = _process_start(pid)
        if started is None or abs(started - float(state.get("process_start") or 0)) > 1:
            return None
    elif now - float(state.get("seen", 0)) > STALE_S:
        return None
    age = max(0.0, now - float(state.get("seen", now)))
    return f"process {pid} on {host} (heartbeat {age:.0f} s ago)"


@dataclass
class Lease:
    """This driver's lease on the sweep folder ``folder``; :meth:`release` when done."""

    folder: str
    _stop: threading.Event
    _thread: threading.Thread

    @classmethod
    def take(cls, folder: str) -> Lease:
        """Take the lease on ``folder`` and keep it fresh.

        Raises:
            UserError: another live driver holds it.
        """
        uri = storage.join(folder, LEASE_FILE)
        existing = storage.read_text(uri)
        if existing:
            held_by = holder(json.loads(existing))
            if held_by:
                raise UserError(
                    f"the sweep in {folder} is still being run by {held_by}; stop that driver "
                    "first (Ctrl-C, or `ray job stop` for a submitted sweep), then try again"
                )
        pid = os.getpid()
        state = {
            "host": socket.gethostname(),
            "pid": pid,
            "process_start": _process_start(pid),
            "seen": time.time(),
        }
        storage.write_text(uri, json.dumps(state))
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                state["seen"] = time.time()
                # Storage briefly unreachable: the next beat tries again.
                with contextlib.suppress(OSError):
                    storage.write_text(uri, json.dumps(state))

        thread = threading.Thread(target=beat, name="sweep-lease", daemon=True)
        thread.start()
        return cls(folder, stop, thread)

    @contextlib.contextmanager
    def released(self) -> Iterator[Lease]:
        """The lease for a ``with`` block, released at its end."""
        try:
            yield self
        finally:
            self.release()

    def release(self) -> None:
        """Stop the heartbeat and delete the lease."""
        self._stop.set()
        self._thread.join(timeout=5)
        # Left behind, it names a process that no longer runs: not held.
        with contextlib.suppress(OSError):
            storage.delete(storage.join(self.folder, LEASE_FILE))
