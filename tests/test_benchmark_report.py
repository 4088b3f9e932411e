"""How the benchmark reports repeated rounds and names its scores (pure functions; nothing is
trained)."""

from __future__ import annotations

from rich.console import Console

from benchmarks.bench_sweep import Row, median_rows, results_table, zero_work_overrides
from sweeps.config.spec import load_spec
from sweeps.running.preflight import check_objective, load_family
from trainable.contract import Objective


def test_repeated_rounds_report_the_median_run_and_keep_every_wall_time():
    rounds = [[Row("sweep", wall_s=w, best_val=w / 10)] for w in (30.0, 20.0, 25.0)]
    (row,) = median_rows(rounds)
    assert row.wall_s == 25.0
    assert row.best_val == 2.5  # the columns of one run, not a mix of runs
    assert row.details["wall_runs_s"] == [30.0, 20.0, 25.0]


def test_failed_rounds_are_left_out_of_the_median_and_counted():
    rounds = [[Row("optuna", wall_s=10.0)], [Row("optuna", ok=False)], [Row("optuna", wall_s=12.0)]]
    (row,) = median_rows(rounds)
    assert row.ok and row.wall_s == 10.0  # lower median of the two that ran
    assert row.details["failed_runs"] == 1


def test_a_variant_that_never_ran_keeps_its_failed_row():
    (row,) = median_rows([[Row("asha", ok=False, notes="exit code 1")]])
    assert not row.ok and row.notes == "exit code 1"


def test_overhead_row_is_chosen_by_its_per_trial_overhead():
    rounds = [
        [Row("overhead", wall_s=9.0, overhead_per_trial_s=0.20)],
        [Row("overhead", wall_s=8.0, overhead_per_trial_s=0.05)],
        [Row("overhead", wall_s=10.0, overhead_per_trial_s=0.10)],
    ]
    (row,) = median_rows(rounds)
    assert row.overhead_per_trial_s == 0.10


def test_the_table_names_the_objective_and_its_test_metric():
    row = Row("optuna", wall_s=5.0, metric="val_auc", best_val=0.98765, test_value=0.97)
    table = results_table([row], 2, Objective("val_auc", "max"), "test_auc")
    headers = [str(column.header) for column in table.columns]
    assert "best val_auc" in headers and "test_auc" in headers
    assert "higher val_auc" in str(table.title)
    console = Console(width=200, record=True)
    console.print(table)
    assert "0.9877" in console.export_text()


def test_zero_work_family_matches_the_spec_task_and_passes_its_checks():
    spec = load_spec("breast_cancer")
    overrides = zero_work_overrides(spec, load_family(spec.trainable, spec.folder))
    assert overrides == ("trainable=benchmarks.zero_work:classification",)
    zero = load_spec("breast_cancer", list(overrides))
    family = load_family(zero.trainable, zero.folder)
    assert family.task == "classification"
    check_objective(zero, family)  # raises if the sweep would refuse the family
