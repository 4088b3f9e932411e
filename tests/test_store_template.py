"""A new local store is a copy of a template MLflow itself created and migrated
(``sweeps/record/store_template.py``): MLflow accepts it as its own, and the template follows the
installed MLflow's schema head."""

from __future__ import annotations

import sqlite3
import urllib.request
from pathlib import Path

import pytest
from servers import mlflow_server

from sweeps.record import store_template
from sweeps.record.client import make_client


@pytest.fixture()
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(store_template.CACHE_ENV, str(cache))
    return cache


def _schema(db: Path) -> dict[str, list[tuple]]:
    """Each table's and index's columns (name, type, not null, default, primary key); DDL text
    is not compared, since SQLite keeps ALTER TABLE's wording, which varies."""
    with sqlite3.connect(db) as conn:
        objects = conn.execute("select type, name from sqlite_master where sql is not null")
        return {
            name: sorted(
                tuple(column)
                for column in conn.execute(
                    f"pragma {'table_info' if kind == 'table' else 'index_info'}('{name}')"
                )
            )
            for kind, name in objects.fetchall()
        }


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("select version_num from alembic_version").fetchone()[0]


def test_a_new_store_is_copied_from_a_template_built_for_the_schema_head(own_cache, tmp_path):
    make_client(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}")
    template = store_template.template_path()
    assert template.parent == own_cache
    assert store_template.schema_head() in template.name
    assert _revision(template) == store_template.schema_head()
    assert _revision(tmp_path / "a" / "mlflow.db") == store_template.schema_head()


def test_the_copy_has_the_schema_of_a_store_mlflow_creates_itself(own_cache, tmp_path):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    make_client(f"sqlite:///{tmp_path / 'copy.db'}")
    SqlAlchemyStore(f"sqlite:///{tmp_path / 'own.db'}", str(tmp_path / "mlruns")).engine.dispose()
    assert _schema(tmp_path / "copy.db") == _schema(tmp_path / "own.db")


def test_the_default_experiment_is_made_where_the_copy_is_opened(own_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = make_client(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    default = client.get_experiment("0")
    # What MLflow gives a store it creates itself: ./mlruns of the process that opened it.
    assert default.name == "Default"
    assert default.artifact_location == str(tmp_path / "mlruns" / "0")


def test_a_second_store_reuses_the_template_without_rebuilding_it(own_cache, tmp_path):
    make_client(f"sqlite:///{tmp_path / 'first.db'}")
    built = store_template.template_path().stat().st_mtime_ns
    make_client(f"sqlite:///{tmp_path / 'second.db'}")
    assert store_template.template_path().stat().st_mtime_ns == built
    assert sorted(p.suffix for p in own_cache.iterdir()) == [".db", ".lock"]


def test_a_template_for_another_schema_head_is_never_used(own_cache, tmp_path):
    own_cache.mkdir()
    stale = store_template.template_path("0123456789ab")
    stale.write_bytes(b"not a store")
    make_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert _revision(tmp_path / "mlflow.db") == store_template.schema_head()


def test_an_existing_store_is_left_as_it_is(own_cache, tmp_path):
    client = make_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_experiment("kept")
    assert not store_template.create_local_store(tmp_path / "mlflow.db")
    assert make_client(f"sqlite:///{tmp_path / 'mlflow.db'}").get_experiment_by_name("kept")


def test_mlflow_server_opens_a_copied_store(own_cache, tmp_path):
    import json
    import os

    folder = tmp_path / "server"
    assert store_template.create_local_store(folder / "mlflow.db")
    with mlflow_server(folder, env=dict(os.environ)) as url:
        with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get?experiment_id=0") as r:
            experiment = json.load(r)["experiment"]
        with urllib.request.urlopen(url) as page:  # the UI's page
            assert page.status == 200
    assert experiment["name"] == "Default"


def test_the_new_store_benchmark_times_both_ways(own_cache):
    from benchmarks.new_store import main

    results = main(["--repeats", "1"])
    assert results["mlflow_creates_it_median_s"] > 0
    assert results["template_copy_median_s"] > 0
