"""The time-to-quality benchmark's arithmetic: medians, ratios, targets and the sweep's timeline
on hand-made data (pure functions; nothing is trained, no sweep runs)."""

from __future__ import annotations

import json

import pytest

from benchmarks.time_to_quality import (
    Run,
    budget_overrides,
    epoch_tax,
    shortfall,
    summarise,
    targets_met,
)
from benchmarks.timeline import (
    assign_slots,
    distribution,
    epoch_times,
    slot_summary,
    summarise_timeline,
    tune_epoch_times,
)
from sweeps.config.spec import load_spec


def _runs() -> list[Run]:
    runs = []
    for seed, (sweep, one, two, replay) in enumerate([(60, 120, 80, 100), (50, 100, 90, 90)]):
        runs += [
            Run("sweep", seed, wall_s=sweep, best_val=2.02, test_value=2.10),
            Run("optuna1", seed, wall_s=one, best_val=2.00, test_value=2.08),
            Run("optuna2", seed, wall_s=two, best_val=2.04, test_value=2.12),
            Run(
                "replay",
                seed,
                wall_s=replay,
                details={"sweep_over_replay": sweep / replay, "concurrency_tax": 0.05 * (seed + 1)},
            ),
        ]
    runs.append(Run("optuna1", 2, ok=False, notes="exit code 1"))
    return runs


def test_medians_over_seeds_leave_failed_runs_out():
    summary = summarise(_runs(), "min")
    one = summary["variants"]["optuna1"]
    assert (one["runs"], one["ok"]) == (3, 2)
    assert one["wall_s"] == 110.0
    assert one["walls_s"] == [120, 100]
    assert summary["variants"]["sweep"]["wall_s"] == 55.0


def test_ratios_are_of_the_medians_and_shortfall_is_relative_to_the_peer():
    derived = summarise(_runs(), "min")["derived"]
    assert derived["sweep_over_optuna1"] == pytest.approx(55 / 110)
    assert derived["sweep_over_optuna2"] == pytest.approx(55 / 85)
    assert derived["val_shortfall_vs_optuna1"] == pytest.approx(0.02 / 2.00)  # worse
    assert derived["val_shortfall_vs_optuna2"] == pytest.approx(-0.02 / 2.04)  # better
    assert derived["sweep_over_replay"] == pytest.approx((60 / 100 + 50 / 90) / 2)
    assert derived["concurrency_tax"] == pytest.approx(0.075)


def test_shortfall_follows_the_mode_and_targets_say_which_are_met():
    assert shortfall(0.90, 0.95, "max") == pytest.approx(0.05 / 0.95)
    assert shortfall(None, 1.0, "min") is None
    met = targets_met({"sweep_over_optuna1": 0.5, "sweep_over_optuna2": 0.9, "epoch_tax": 0.2})
    assert met["sweep_over_optuna1"]["met"] is True
    assert met["sweep_over_optuna2"]["met"] is False
    assert met["concurrency_tax"]["met"] is None  # not measured
    assert met["epoch_tax"] == {"value": 0.2, "target": None, "met": None}  # no target: shown


def test_epoch_tax_compares_first_to_last_epoch_in_the_sweep_and_in_the_replay():
    records = [
        {"name": "trial-0001", "epoch_stamps": [20.0, 21.0, 23.0]},  # 20 s of start-up left out
        {"name": "trial-0002", "epoch_stamps": [5.0]},  # one epoch: no span
        {"name": "trial-0003", "epoch_stamps": [1.0, 9.0]},  # not replayed
    ]
    replayed = [
        {"name": "trial-0001", "epoch_ends_s": [1.5, 2.5, 4.0]},
        {"name": "trial-0002", "epoch_ends_s": [1.0]},
    ]
    assert epoch_tax(records, replayed) == pytest.approx(3.0 / 2.5 - 1)


def test_budget_overrides_set_trials_epochs_and_asha_and_keep_the_grace_period_within():
    spec = load_spec("abalone")  # ASHA max_t 100, grace period 10
    assert budget_overrides(spec, None, None) == []
    assert budget_overrides(spec, 4, 30) == [
        "search.num_samples=4",
        "search.space.epochs=30",
        "search.scheduler.max_t=30",
    ]
    assert budget_overrides(spec, None, 6)[-1] == "search.scheduler.grace_period=6"


def test_trials_go_to_the_slot_freed_most_recently_and_overlap_beyond_slots_is_forced():
    intervals = [(0, 10), (1, 5), (6, 12), (10.5, 20), (11, 13)]
    # (6, 12) follows (1, 5) on slot 1, (10.5, 20) follows (0, 10) on slot 0; (11, 13) finds
    # both busy and goes to the one that frees first (slot 1, at 12).
    assert assign_slots(intervals, 2) == [0, 1, 1, 0, 1]
    assert assign_slots([(5, 6), (0, 1), (2, 3)], 2) == [0, 0, 0]  # input order does not matter


def test_a_slot_summary_counts_busy_time_gaps_lead_and_drain():
    summary = slot_summary([(1.0, 4.0), (4.5, 8.0), (9.0, 9.5)], (0.0, 10.0))
    assert summary["busy_s"] == pytest.approx(7.0)
    assert summary["busy_fraction"] == pytest.approx(0.7)
    assert summary["gaps"]["count"] == 2
    assert summary["gaps"]["sum"] == pytest.approx(1.5)
    assert summary["lead_s"] == pytest.approx(1.0)
    assert summary["drain_s"] == pytest.approx(0.5)
    assert summary["overlaps"] == 0


def test_distribution_of_nothing_and_of_a_few_values():
    assert distribution([])["count"] == 0 and distribution([])["median"] is None
    d = distribution([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (d["median"], d["p10"], d["p90"], d["sum"]) == (3.0, 1.4, 4.6, 15.0)


def _trial(name: str, start: float, end: float, stamps: list[float]) -> dict:
    return {
        "name": name,
        "start": start,
        "end": end,
        "epoch_stamps": stamps,
        "epochs_trained": len(stamps),
        "trial_time_s": end - start,
    }


def test_epoch_times_split_by_whether_another_trial_runs():
    trials = [_trial("a", 0.0, 10.0, [2.0, 4.0, 6.0]), _trial("b", 5.0, 20.0, [7.0, 8.0, 15.0])]
    times = epoch_times(trials)
    # a: 2->4 alone, 4->6 (middle 5.0, b starts at 5.0) concurrent; b: 7->8 concurrent, 8->15
    # (middle 11.5) alone.
    assert times["alone"] == [2.0, 7.0]
    assert times["concurrent"] == [2.0, 1.0]
    assert times["first_report"] == [2.0, 2.0]


def test_timeline_splits_the_wall_into_start_up_trials_and_tail():
    record = {
        "launch": 100.0,
        "exit": 160.0,
        "parent_start": 108.0,
        "parent_end": 158.0,
        "registered": 150.0,
        "trials": [
            _trial("trial-0001", 115.0, 130.0, [118.0, 120.0]),
            _trial("trial-0002", 116.0, 125.0, [119.0]),
            _trial("trial-0003", 126.0, 145.0, [130.0, 140.0]),
        ],
    }
    timeline = summarise_timeline(record, 2)
    assert timeline["wall_s"] == 60.0
    assert timeline["startup_s"] == 15.0
    assert timeline["launch_to_parent_start_s"] == 8.0
    assert timeline["trials_window_s"] == 30.0
    assert timeline["tail_s"] == 15.0
    assert timeline["tail"]["last_trial_end_to_registered_s"] == 5.0
    assert timeline["tail"]["parent_end_to_exit_s"] == 2.0
    assert [t["slot"] for t in timeline["trials"]] == [0, 1, 1]
    slot1 = timeline["slots"][1]
    assert slot1["gaps"]["sum"] == pytest.approx(1.0)  # 125 -> 126
    assert timeline["gaps_total"] == {"count": 1, "sum_s": pytest.approx(1.0)}
    assert timeline["slots"][0]["drain_s"] == pytest.approx(15.0)  # 130 -> 145
    assert timeline["trials"][0]["start"] == 15.0  # seconds after launch


def test_epoch_times_prefer_the_workers_own_clock():
    trial = _trial("a", 0.0, 10.0, [5.0, 5.0, 5.0])  # the driver got three epochs at once
    trial["worker_epochs"] = [[1, 3.0, 3.0], [2, 4.5, 1.5], [3, 6.0, 1.5]]
    other = _trial("b", 4.0, 20.0, [])
    times = epoch_times([trial, other])
    assert times["first_report"] == [3.0]
    # epoch 2 runs 3.0-4.5 (middle 3.75: b not started yet), epoch 3 runs 4.5-6.0 (b running)
    assert times["alone"] == [1.5]
    assert times["concurrent"] == [1.5]


def test_a_report_carrying_earlier_epochs_splits_its_time_among_them(tmp_path):
    reports = [
        {"trial_id": "a", "training_iteration": 1, "epoch": 1, "time_total_s": 2.0,
         "time_this_iter_s": 2.0},
        {"trial_id": "a", "training_iteration": 2, "epoch": 4, "time_total_s": 3.5,
         "time_this_iter_s": 1.5, "earlier_epochs": [{"epoch": 2}, {"epoch": 3}]},
    ]  # fmt: skip
    (tmp_path / "result.json").write_text("\n".join(json.dumps(r) for r in reports))

    assert tune_epoch_times(tmp_path) == {
        "a": [[1, 2.0, 2.0], [2, 2.5, 0.5], [3, 3.0, 0.5], [4, 3.5, 0.5]]
    }
