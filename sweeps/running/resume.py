"""The sweep's state file (``sweep-state.json`` in its storage folder): what a resume needs to
find the same MLflow parent run and spec, and how a resume finds the folder."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from sweeps.errors import UserError
from sweeps.running import storage

STATE_FILE = "sweep-state.json"
RESULTS_FOLDER = "sweep-results"
#: What :func:`new_run_name` appends to the spec's name (sweeps before 2026-12 had no suffix).
_RUN_NAME_TAIL = r"-\d{8}-\d{6}(-[0-9a-f]{4})?"


def new_run_name(spec_name: str) -> str:
    """``abalone-20261130-131126-3fa2``: the spec's name, the start time and a random suffix,
    so that two sweeps started in the same second get their own run and folder."""
    return f"{spec_name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def is_run_of(run_name: str, spec_name: str) -> bool:
    """Whether ``run_name`` is a sweep of the spec named ``spec_name`` exactly (a sweep of
    ``abalone-wide`` is not one of ``abalone``)."""
    return re.fullmatch(re.escape(spec_name) + _RUN_NAME_TAIL, run_name) is not None


def save_state(
    storage_path: str,
    run_name: str,
    spec: dict[str, Any],
    spec_folder: str | None,
    parent_run_id: str,
    experiment_id: str,
    tracking_uri: str,
) -> None:
    """Enough to resume this sweep from its storage folder: its MLflow parent run and the spec
    (``spec``, with storage and tracking URI resolved: a resume may start from another folder)."""
    state = {
        "run_name": run_name,
        "spec_folder": spec_folder,
        "parent_run_id": parent_run_id,
        "experiment_id": experiment_id,
        "tracking_uri": tracking_uri,
        "spec": spec,
    }
    storage.write_text(
        storage.join(storage_path, run_name, STATE_FILE), json.dumps(state, indent=2)
    )


def load_state(folder: str) -> dict[str, Any]:
    """The state saved in a sweep's storage folder (found by :func:`locate_sweep`)."""
    return json.loads(storage.read_text(storage.join(folder, STATE_FILE)) or "{}")


def locate_sweep(target: str) -> str:
    """The storage folder of the sweep ``target`` names: the folder itself (local or
    ``s3://``), or a sweep run name / spec name (its newest sweep) under ``./sweep-results``.

    Raises:
        UserError: no sweep is found there.
    """
    candidates = [target] if storage.is_remote(target) else []
    if not candidates:
        path = Path(target).expanduser()
        candidates = [str(path.resolve())]
        root = Path(RESULTS_FOLDER).resolve()
        if root.is_dir() and "/" not in target:
            candidates.append(str(root / target))
            named = sorted(
                p
                for p in root.glob(f"{target}-*")
                if is_run_of(p.name, target) and (p / STATE_FILE).is_file()
            )
            if named:
                candidates.append(str(named[-1]))  # names end in a timestamp: newest last
    for candidate in candidates:
        if storage.read_text(storage.join(candidate, STATE_FILE)) is not None:
            return candidate.rstrip("/")
    raise UserError(
        f"resume: no sweep found at {target!r}; give the sweep's folder (with {STATE_FILE}), "
        f"e.g. ./{RESULTS_FOLDER}/NAME-20261127-163630-3fa2, or a sweep name under "
        f"./{RESULTS_FOLDER}"
    )
