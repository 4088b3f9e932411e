"""A sweep's MLflow writes journaled on disk until MLflow has them, so none is lost when the
tracking server is away longer than the driver lives.

Every queued write is appended to ``mlflow-spool.jsonl`` as an operation and its arguments
(JSON) before it is sent, and marked done once MLflow took it. What is not done when the driver
ends (an outage that outlasted the sweep) or dies is replayed, in order, by ``sweep resume`` or
``sweep sync``. The journal lives in the sweep's folder when that is local; for ``s3://``
storage it lives on this machine (appending to an S3 object per write would cost more than the
write), under :data:`LOCAL_SPOOLS`.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

SPOOL_FILE = "mlflow-spool.jsonl"
#: Where the journals of sweeps with ``s3://`` storage live.
LOCAL_SPOOLS = Path.home() / ".cache" / "ray-sweeps" / "spool"

log = logging.getLogger(__name__)


def spool_folder(sweep_folder: str, run_name: str) -> Path:
    """The folder of the journal of the sweep in ``sweep_folder`` named ``run_name``."""
    if "://" in sweep_folder and not sweep_folder.startswith("file://"):
        return LOCAL_SPOOLS / run_name
    return Path(sweep_folder)


class Spool:
    """The journal in ``folder``: :meth:`append` an operation, mark it :meth:`done`, read the
    :meth:`pending` ones back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / SPOOL_FILE
        self._lock = threading.Lock()
        self._next = sum(1 for _ in self._entries())
        # A driver killed mid-append leaves a last line without its newline: the next record
        # starts on a line of its own, or the torn line would swallow it.
        self._line_open = self._ends_mid_line()

    def append(self, op: str, args: list[Any]) -> int:
        """Journal ``op(*args)``; returns its id for :meth:`done`."""
        with self._lock:
            entry = self._next
            self._next += 1
            self._write({"id": entry, "op": op, "args": args})
        return entry

    def done(self, entry: int) -> None:
        with self._lock:
            self._write({"done": entry})

    def pending(self) -> list[tuple[int, str, list[Any]]]:
        """The journaled operations not yet done, in the order they were queued."""
        ops: dict[int, tuple[str, list[Any]]] = {}
        for record in self._entries():
            if "done" in record:
                ops.pop(record["done"], None)
            else:
                ops[record["id"]] = (record["op"], record["args"])
        return [(entry, op, args) for entry, (op, args) in sorted(ops.items())]

    def clear(self) -> None:
        """Delete the journal and its files (once everything in it was sent)."""
        import shutil

        with self._lock:
            self.path.unlink(missing_ok=True)
            shutil.rmtree(self.folder / "spooled-artifacts", ignore_errors=True)
            self._next = 0

    def artifacts(self, name: str) -> Path:
        """A folder beside the journal for files a queued write uploads."""
        folder = self.folder / "spooled-artifacts" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _write(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(("\n" if self._line_open else "") + json.dumps(record, default=str) + "\n")
        self._line_open = False

    def _ends_mid_line(self) -> bool:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, 2)
                if fh.tell() == 0:
                    return False
                fh.seek(-1, 2)
                return fh.read(1) != b"\n"
        except FileNotFoundError:
            return False

    def _entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        records = []
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # Cut short by the driver's death: that write was never sent, or never marked done.
                log.warning("%s: line %d is torn (a killed driver's); skipped", self.path, number)
        return records
