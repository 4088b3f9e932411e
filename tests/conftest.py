"""Shared fixtures: one local Ray instance and one S3 API for the whole test session.

Arrange code the tests share (spec paths, small overrides, CLI commands) is in helpers.py.
"""

from __future__ import annotations

import os

import pytest
from helpers import pythonpath_with_tests

from sweeps.environment import QUIET_ENV, child_env, set_defaults

set_defaults(QUIET_ENV)


@pytest.fixture(scope="session", autouse=True)
def store_template_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The session's own cache of MLflow store templates (never the user's), inherited by every
    `sweep` the tests start."""
    from sweeps.record.store_template import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """A real S3 API (moto server) on 127.0.0.1 for the whole session.

    The whole test process gets dummy AWS credentials and endpoints pointing here, so no test
    can reach real AWS; Ray workers get the same environment through ``ray_session``.
    """
    from servers import fake_aws_env, moto_server

    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        saved = {k: os.environ.get(k) for k in fake_aws_env(url)}
        os.environ.update(fake_aws_env(url))
        os.environ.pop("AWS_PROFILE", None)
        yield url
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str):
    """A local Ray with its own temp dir, shared by every test that runs trials."""
    import ray
    from servers import fake_aws_env

    temp_dir = tmp_path_factory.mktemp("ray")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(temp_dir),
        runtime_env={
            "env_vars": {
                **child_env(),
                # so workers can import the test trainables in tests/sample_trainables.py
                "PYTHONPATH": pythonpath_with_tests(),
                **fake_aws_env(s3_endpoint),  # trials write checkpoints to the moto S3
            }
        },
    )
    yield ray
    ray.shutdown()


# --- sweeps shared by several test modules (each costs a sweep's fixed start and tail) ---------


@pytest.fixture(scope="session")
def default_sweep(ray_session, tmp_path_factory: pytest.TempPathFactory):
    """One default small sweep into its own SQLite store, read by the end-to-end tests and the
    views (`sweep ls/status/best`); no test adds a sweep to its store."""
    from helpers import DEFAULT_SPEC, small_spec_overrides

    from sweeps.config.spec import load_spec
    from sweeps.running.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("default-sweep")
    return run_sweep(load_spec(DEFAULT_SPEC, small_spec_overrides(tmp)))


@pytest.fixture(scope="session")
def mae_conditional_sweep(ray_session, tmp_path_factory: pytest.TempPathFactory):
    """One sweep that optimises ``val_mae`` with patience 1 and a noisy learning rate (so trials
    stop early), over a conditional space (``momentum`` only when ``optimizer`` is sgd): read by
    test_objective.py and test_conditional_sweep.py."""
    from helpers import DEFAULT_SPEC, MAE_SWEEP_EPOCHS, MAE_SWEEP_TRIALS, small_spec_overrides

    from sweeps.config.spec import load_spec
    from sweeps.running.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("mae-conditional")
    overrides = small_spec_overrides(
        tmp,
        **{
            "search.metric": "val_mae",
            "search.num_samples": MAE_SWEEP_TRIALS,
            "search.space.epochs": MAE_SWEEP_EPOCHS,
            "search.space.patience": 1,
            "search.space.learning_rate": "{loguniform: [0.02, 0.1]}",  # noisy: stops early
            "search.initial_points": "[]",
            "search.space.optimizer": "{choice: [adam, sgd]}",
            "search.space.momentum": "{uniform: [0.0, 0.9], when: {optimizer: sgd}}",
        },
    )
    return run_sweep(load_spec(DEFAULT_SPEC, overrides))


#: Trials of ``exploratory_sweep``: past TPE's 10 start-up trials, so a warm start learns.
EXPLORATORY_TRIALS = 12


@pytest.fixture(scope="session")
def exploratory_sweep(ray_session, tmp_path_factory: pytest.TempPathFactory):
    """One sweep of 12 trials with ``register.enabled: false``, in its own store: the earlier
    sweep test_warm_start learns from, and what test_register_off reads. Returns the folder
    and the outcome."""
    from helpers import exploratory_spec

    from sweeps.running.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("exploratory")
    return tmp, run_sweep(exploratory_spec(tmp, EXPLORATORY_TRIALS, seed=1))
