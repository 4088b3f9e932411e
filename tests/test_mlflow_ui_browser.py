"""The MLflow UI, in a real browser (Debian's chromium through Playwright), shows a sweep as a
parent run with its trials nested under it, and compares the trials in a parallel-coordinates
chart. Screenshots land in each test's tmp_path."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import DEFAULT_SPEC, small_spec_overrides
from servers import mlflow_server

from sweeps.config.spec import load_spec
from sweeps.results import SweepOutcome
from sweeps.running.sweep import run_sweep

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 30_000
TRIALS = 2

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is missing (Debian packages chromium and chromium-driver; .ci/run "
    "installs them)",
)


@pytest.fixture(scope="module")
def ui_sweep(ray_session, tmp_path_factory) -> Iterator[SweepOutcome]:
    """A local `mlflow server` holding one tiny sweep (2 trials x 2 epochs)."""
    folder = tmp_path_factory.mktemp("mlflow-ui")
    artifacts = ("--artifacts-destination", str(folder / "artifacts"))
    with mlflow_server(folder / "server", *artifacts, env=dict(os.environ)) as url:
        overrides = small_spec_overrides(
            folder, **{"search.num_samples": TRIALS, "search.space.epochs": 2, "tracking.uri": url}
        )
        yield run_sweep(load_spec(DEFAULT_SPEC, overrides))


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    """Debian's chromium (never a Playwright-downloaded one) with a fresh profile."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


@contextmanager
def _page(browser: Any, shot: Path) -> Iterator[Any]:
    """A new tab; a screenshot goes to ``shot`` at the end, and a failure names its path."""
    page = browser.new_page()
    try:
        yield page
    except Exception as exc:
        page.screenshot(path=str(shot), full_page=True)
        pytest.fail(f"{type(exc).__name__}: {exc}\nscreenshot: {shot}", pytrace=False)
    else:
        page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()


def _children(outcome: SweepOutcome) -> list[str]:
    return [t.run_id for t in outcome.trials if t.run_id]


def test_experiment_page_shows_the_trials_nested_under_the_sweep(ui_sweep, browser, tmp_path):
    base = ui_sweep.tracking_uri
    with _page(browser, tmp_path / "experiment-runs.png") as page:
        page.goto(f"{base}/#/experiments/{ui_sweep.experiment_id}/runs")
        parent = page.locator(f'a[href$="/runs/{ui_sweep.parent_run_id}"]')
        parent.wait_for()
        assert parent.inner_text() == ui_sweep.run_name
        first_child = page.locator(f'a[href$="/runs/{_children(ui_sweep)[0]}"]')
        if not first_child.count():  # trials start collapsed under the parent: expand it
            page.locator('[role="gridcell"]', has=parent).locator("button").first.click()
        names = []
        for run_id in _children(ui_sweep):
            child = page.locator(f'a[href$="/runs/{run_id}"]')
            child.wait_for()
            names.append(child.inner_text())
        assert sorted(names) == [f"trial-{n:04d}" for n in range(1, TRIALS + 1)]


def test_compare_view_of_the_trials_draws_parallel_coordinates(ui_sweep, browser, tmp_path):
    runs = urllib.parse.quote(json.dumps(_children(ui_sweep)))
    experiments = urllib.parse.quote(json.dumps([ui_sweep.experiment_id]))
    url = f"{ui_sweep.tracking_uri}/#/compare-runs?runs={runs}&experiments={experiments}"
    with _page(browser, tmp_path / "compare-runs.png") as page:
        page.goto(url)
        chart = page.locator(".js-plotly-plot .main-svg").first
        chart.wait_for()
        axes = page.locator(".js-plotly-plot").first.text_content() or ""
        assert any(name in axes for name in ui_sweep.spec.searched), axes
        for run_id in _children(ui_sweep):
            assert page.get_by_text(run_id).count() >= 1
