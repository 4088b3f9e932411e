"""How long a new local MLflow store takes to be ready: MLflow creating and migrating it itself,
against the sweep's copy of its cached template (``sweeps/record/store_template.py``).

    python -m benchmarks.new_store [--repeats 5]

Each timing opens a client on a new ``sqlite:///`` path and makes the calls a sweep makes first
(an experiment and a registered-model search), in this one process, so both variants pay the
same imports once beforehand. The template's one-time build is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _open(uri: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import mlflow  # noqa: F401 - imports paid before any timing

    from sweeps.record import store_template
    from sweeps.record.client import make_client

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch:
        os.environ[store_template.CACHE_ENV] = str(Path(scratch, "cache"))
        started = time.perf_counter()
        make_client(f"sqlite:///{Path(scratch, 'first.db')}")
        results["template_build_and_first_store_s"] = time.perf_counter() - started
        own, copied = [], []
        for i in range(args.repeats):
            started = time.perf_counter()
            _open(f"sqlite:///{Path(scratch, f'own-{i}.db')}")
            own.append(time.perf_counter() - started)
            started = time.perf_counter()
            make_client(f"sqlite:///{Path(scratch, f'copy-{i}.db')}")
            copied.append(time.perf_counter() - started)
    results["mlflow_creates_it_median_s"] = statistics.median(own)
    results["template_copy_median_s"] = statistics.median(copied)
    results["repeats"] = args.repeats
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}))
    return results


if __name__ == "__main__":
    main()
