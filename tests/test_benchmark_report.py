"""How the benchmark reports repeated rounds (pure functions; nothing is run)."""

from __future__ import annotations

from benchmarks.bench_sweep import Row, median_rows


def test_repeated_rounds_report_the_median_run_and_keep_every_wall_time():
    rounds = [[Row("sweep", wall_s=w, best_val_rmse=w / 10)] for w in (30.0, 20.0, 25.0)]
    (row,) = median_rows(rounds)
    assert row.wall_s == 25.0
    assert row.best_val_rmse == 2.5  # the columns of one run, not a mix of runs
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
