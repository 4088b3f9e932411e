"""The parent run's summary artifacts: results.csv and the Optuna plots (HTML and PNG)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from sweeps.config.spec import load_spec
from sweeps.record.artifacts import (
    build_figures,
    build_study,
    write_summary,
)
from sweeps.results import ERROR, TrialRecord

PLOTS = ["optimization_history", "parallel_coordinates", "param_importances", "learning_curves"]
SPEC = load_spec(None, ["search.num_samples=6", "search.scheduler=null"])
METRIC = SPEC.search.metric  # val_rmse, minimised


def _trial(number: int, value: float | None, **params: object) -> TrialRecord:
    base = {
        "layers": 1 + number % 4,
        "units": [16, 32, 64, 128][number % 4],
        "batch_norm": number % 2 == 0,
        "dropout": 0.05 * number,
        "learning_rate": 1e-4 * 2**number,
        "batch_size": [16, 32, 64, 128][(number + 1) % 4],
        "optimizer": "adam" if number % 3 else "adamw",
    }
    base.update(params)
    if value is None:
        return TrialRecord(number, status=ERROR, config=base, run_id=f"run{number}")
    history = [value + 0.5 * (8 - epoch) for epoch in range(number + 2)]
    return TrialRecord(
        number, best_value=value, config=base, history=history, run_id=f"run{number}"
    )


TRIALS = [
    _trial(1, 2.40),
    _trial(2, 2.10),
    _trial(3, 2.90),
    _trial(4, None),  # failed
    _trial(5, 2.05),
    _trial(6, 2.60),
]
COMPLETE = [t for t in TRIALS if t.complete]


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("summary")
    return folder, write_summary(TRIALS, SPEC, folder, top_n=3)


@pytest.fixture(scope="module")
def figures():
    return build_figures(build_study(TRIALS, SPEC), TRIALS, SPEC, top_n=3)


def _line_count(fig) -> int:
    """Trials drawn in a parallel-coordinates figure (Parcoords, or Optuna 5's line traces)."""
    if fig.data and fig.data[0].type == "parcoords":
        return len(fig.data[0].dimensions[0].values)
    return sum(
        1
        for trace in fig.data
        if trace.mode == "lines" and trace.x is not None and None not in trace.x
    )


def test_results_csv_has_one_row_per_trial_with_param_columns(summary):
    folder, _ = summary
    with (folder / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["trial"] for r in rows] == [f"trial-{t.number:04d}" for t in TRIALS]
    assert list(rows[0]) == ["trial", "run_id", "state", METRIC, *SPEC.searched]
    assert "epochs" not in rows[0]  # constants are not hyperparameters searched
    failed = rows[3]
    assert (failed["state"], failed[METRIC], failed["run_id"]) == ("FAIL", "", "run4")
    assert float(rows[4][METRIC]) == 2.05
    assert rows[4]["optimizer"] == "adam"


def test_write_summary_returns_every_file_it_wrote(summary):
    folder, written = summary
    expected = {"results.csv", "summary.html"} | {f"{p}.png" for p in PLOTS}
    assert {p.name for p in written} == expected
    assert {p.name for p in folder.iterdir()} == expected


@pytest.mark.parametrize("plot", PLOTS)
def test_png_is_a_readable_image(summary, plot):
    import matplotlib.image

    path = summary[0] / f"{plot}.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    height, width = matplotlib.image.imread(path).shape[:2]
    assert height >= 200 and width >= 300


def test_html_report_embeds_plotly_once_without_cdn(summary):
    html = (summary[0] / "summary.html").read_text()
    assert not re.search(r"<script[^>]*src=[^>]*cdn\.plot\.ly", html)
    assert 1_000_000 < len(html) < 8_000_000  # plotly.js itself is inside the page, once


@pytest.mark.parametrize("plot", PLOTS)
def test_html_report_holds_every_plot(summary, plot):
    assert f'id="{plot}"' in (summary[0] / "summary.html").read_text()


def test_history_has_one_point_per_complete_trial(figures):
    points = next(t for t in figures["optimization_history"].data if t.name == METRIC)
    assert len(points.x) == len(COMPLETE)
    assert sorted(points.y) == sorted(t.best_value for t in COMPLETE)


def test_parallel_coordinates_has_one_line_per_complete_trial(figures):
    assert _line_count(figures["parallel_coordinates"]) == len(COMPLETE)


def test_learning_curves_show_top_n_trials_best_first(figures):
    traces = figures["learning_curves"].data
    assert [t.name.split(" ")[0] for t in traces] == ["trial-0005", "trial-0002", "trial-0001"]
    assert list(traces[0].y) == TRIALS[4].history


def test_importances_skipped_with_one_complete_trial(tmp_path):
    trials = [_trial(1, 2.4), _trial(2, None), _trial(3, None)]
    written = write_summary(trials, SPEC, tmp_path)
    names = {p.name for p in written}
    assert not any(n.startswith("param_importances") for n in names)
    assert {"optimization_history.png", "parallel_coordinates.png", "summary.html"} <= names


def test_importances_skipped_when_no_param_varies(tmp_path):
    same = TRIALS[0].config
    trials = [_trial(1, 2.4), _trial(2, 2.1, **same), _trial(3, 2.9, **same)]
    names = {p.name for p in write_summary(trials, SPEC, tmp_path)}
    assert 'id="param_importances"' not in (tmp_path / "summary.html").read_text()
    assert "param_importances.png" not in names


def test_no_complete_trial_writes_only_results_csv(tmp_path):
    written = write_summary([_trial(1, None), _trial(2, None)], SPEC, tmp_path)
    assert [p.name for p in written] == ["results.csv"]


def test_study_direction_follows_spec_mode():
    spec = load_spec(None, ["search.mode=max"])
    assert build_study(TRIALS, spec).direction.name == "MAXIMIZE"
    assert build_study(TRIALS, SPEC).direction.name == "MINIMIZE"


def test_distributions_follow_spec_params():
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    space = SPEC.searched
    assert space["layers"].to_optuna() == IntDistribution(1, 4)
    assert space["dropout"].to_optuna() == FloatDistribution(0.0, 0.3)
    assert space["learning_rate"].to_optuna() == FloatDistribution(1e-4, 1e-2, log=True)
    assert space["units"].to_optuna() == CategoricalDistribution([16, 32, 64, 128])
    assert set(build_study(TRIALS, SPEC).trials[0].distributions) == set(space)


def test_html_report_shows_a_metric_name_as_text_not_markup(tmp_path):
    from sweeps.record.artifacts import write_html_report

    spec = load_spec(None, ["search.metric=val_<script>alert(1)</script>"])
    page = write_html_report({}, spec, tmp_path / "summary.html").read_text()
    assert "<script>alert(1)</script>" not in page
    assert "val_&lt;script&gt;alert(1)&lt;/script&gt;" in page
