"""A new local SQLite tracking store in well under a second.

MLflow creates a new SQLite store by running every schema migration since its first release,
about 8 s on a small machine, once per store. Like MLflow's own test suite (its ``cached_db``
fixture in ``tests/conftest.py``), a new store here is a copy of an empty store that MLflow
itself created and migrated: built once per installed schema head (the alembic revision MLflow
checks on every open) and cached in the user's cache folder, so an upgrade of MLflow that
changes the schema builds a new one. The template holds no default experiment: the first open
of the copy creates it, with the artifact location MLflow gives it in that process, exactly as
for a store MLflow made from nothing. Anything that goes wrong here leaves the store for
MLflow to create the slow way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)

#: Overrides where templates are cached (default: ``$XDG_CACHE_HOME/ray-sweeps`` or
#: ``~/.cache/ray-sweeps``).
CACHE_ENV = "SWEEPS_CACHE_DIR"


def cache_dir() -> Path:
    """The folder that holds the store templates."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ray-sweeps"


def schema_head() -> str:
    """The schema revision the installed MLflow expects of a store (its alembic head)."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def template_path(head: str | None = None) -> Path:
    """Where the template for schema ``head`` (default: the installed one) is cached."""
    return cache_dir() / f"mlflow-store-{head or schema_head()}.db"


def create_local_store(db_file: Path) -> bool:
    """Make ``db_file`` a new, empty, fully migrated MLflow store if it does not exist yet (or
    is an empty file); True if it was copied from the template. The caller holds the store's
    creation lock."""
    if db_file.exists() and db_file.stat().st_size > 0:
        return False
    try:
        template = _template()
        db_file.parent.mkdir(parents=True, exist_ok=True)
        partial = db_file.with_name(f".{db_file.name}.{os.getpid()}.partial")
        shutil.copyfile(template, partial)
        os.replace(partial, db_file)
        return True
    except Exception as exc:  # noqa: BLE001 - a cache miss must never fail a sweep
        log.debug("no store template (%s): MLflow creates %s itself", exc, db_file)
        return False


def _template() -> Path:
    """The cached template for the installed schema head, built by MLflow if missing."""
    path = template_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_suffix(".lock")):
        if not path.exists():
            _build(path)
    return path


def _build(path: Path) -> None:
    """Let MLflow create and migrate a store at a temporary path, then empty it of the
    default experiment and move it to ``path``."""
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as RegistryStore,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        db = Path(scratch) / "store.db"
        uri = f"sqlite:///{db}"
        for store in (SqlAlchemyStore(uri, str(Path(scratch) / "mlruns")), RegistryStore(uri)):
            store.engine.dispose()
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            conn.execute("DELETE FROM experiments WHERE experiment_id = 0")
        os.replace(db, path)
