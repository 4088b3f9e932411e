"""The timeline of one sweep: where its wall went, read back from its MLflow store and Tune's
``result.json`` files after the run (start-up, each trial's start, epochs and end on each
worker slot, the tail after the last trial), with a Gantt chart. Used by
``benchmarks.time_to_quality``; the functions below ``read_sweep_record`` are pure.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.bench_sweep import _parent_and_children
from trainable.contract import EARLIER_EPOCHS, epoch_of

if TYPE_CHECKING:
    from sweeps.config.spec import SweepSpec

#: Where each time of the timeline comes from (written with it into the JSON).
TIME_SOURCES = (
    "launch/exit: the benchmark's clock around the sweep process (exit = launch + wall); "
    "parent start/end: the parent run's start_time/end_time; trial start: the child run's "
    "start_time (created by the driver's MLflow writer thread after Tune's on_trial_start); "
    "trial end: the timestamp of the child's final metrics (trial_time_s), taken in the "
    "driver's on_trial_complete (the child's end_time is set later by the writer and kept "
    "as mlflow_end in trial_records); epoch: trial start + the worker's time_total_s at that "
    "epoch (Tune's result.json), else the val metric's timestamp (the driver's receipt, "
    "bursty: kept as epoch_received); registered: the model version's creation_timestamp."
)


DISTRIBUTION_KEYS = ("count", "sum", "mean", "min", "p10", "median", "p90", "max")


def read_sweep_record(tracking_uri: str, spec: SweepSpec) -> dict[str, Any]:
    """The sweep's parent run times, its registered version's creation time (None if none)
    and, per child run: number, status, params, final metrics and times (seconds since the
    epoch): ``start`` (child run created), ``end`` (its final metrics logged, the driver's
    moment of the trial's end), ``mlflow_end`` and each epoch's ``val`` metric timestamp."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    parent, children = _parent_and_children(client, spec.experiment_name)
    trials = [_child_record(client, child, spec.objective.metric) for child in children]
    trials.sort(key=lambda t: t["number"])
    return {
        "parent_start": parent.info.start_time / 1000,
        "parent_end": (parent.info.end_time or 0) / 1000 or None,
        "registered": _registered_at(client, parent.info.run_id),
        "trials": trials,
    }


def _child_record(client: Any, child: Any, metric: str) -> dict[str, Any]:
    run_id = child.info.run_id
    metrics = child.data.metrics
    epochs = sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)
    closing = client.get_metric_history(run_id, "trial_time_s")
    mlflow_end = (child.info.end_time or 0) / 1000 or None
    return {
        "name": child.info.run_name,
        "number": int(child.data.tags.get("sweep.trial_number", 0)),
        "status": child.info.status,
        "params": dict(child.data.params),
        "epochs_trained": int(metrics.get("epochs_trained", 0)),
        "trial_time_s": metrics.get("trial_time_s"),
        "best_val": metrics.get(f"best_{metric}"),
        "start": child.info.start_time / 1000,
        "end": closing[0].timestamp / 1000 if closing else mlflow_end,
        "mlflow_end": mlflow_end,
        "trial_id": child.data.tags.get("ray.trial_id"),
        "epoch_stamps": [m.timestamp / 1000 for m in epochs],
    }


def tune_epoch_times(storage: Path) -> dict[str, list[list[float]]]:
    """Per Ray trial id, ``[epoch, time_total_s, seconds]`` of each epoch in the
    ``result.json`` files Tune writes under ``storage`` (the worker's own clock). A report
    that carried earlier epochs (``earlier_epochs``) covers them all: its time is split
    evenly among them."""
    out = {}
    for path in storage.rglob("result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows and "trial_id" in rows[0]:
            out[rows[0]["trial_id"]] = [epoch for r in rows for epoch in _report_epochs(r)]
    return out


def _report_epochs(report: dict[str, Any]) -> list[list[float]]:
    """``[epoch, time_total_s, seconds]`` of each epoch one Tune report covers."""
    count = 1 + len(report.get(EARLIER_EPOCHS) or [])
    last = epoch_of(report)
    total, seconds = float(report["time_total_s"]), float(report["time_this_iter_s"]) / count
    return [[last - back, total - back * seconds, seconds] for back in reversed(range(count))]


def use_worker_times(
    records: Sequence[dict[str, Any]], totals: dict[str, list[list[float]]]
) -> None:
    """Attach each trial's worker-side epoch times (``worker_epochs``): Tune hands the driver
    several epochs' results at once, so the MLflow timestamps of epochs come in bursts."""
    for record in records:
        worker = totals.get(record.get("trial_id") or "")
        if worker:
            record["worker_epochs"] = worker


def _registered_at(client: Any, parent_run_id: str) -> float | None:
    """When the sweep's model version was created (seconds since the epoch), if it made one."""
    try:
        versions = client.search_model_versions(f"tags.sweep_run_id = '{parent_run_id}'")
    except Exception:  # an MLflow store without the registry, or an older filter syntax
        return None
    stamps = [v.creation_timestamp for v in versions if v.creation_timestamp]
    return min(stamps) / 1000 if stamps else None


def span(stamps: Sequence[float]) -> float:
    """Seconds from the first of ``stamps`` to the last (0 for fewer than two)."""
    return stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0


def assign_slots(intervals: Sequence[tuple[float, float]], slots: int) -> list[int]:
    """A worker slot (0 .. ``slots``-1) per ``(start, end)`` interval: in start order, each
    goes to the free slot (last end at or before its start) that freed most recently, else,
    when the intervals overlap more than ``slots`` deep, to the slot that frees first."""
    free_at = [-math.inf] * max(1, slots)
    out = [0] * len(intervals)
    for i in sorted(range(len(intervals)), key=lambda j: intervals[j]):
        start, end = intervals[i]
        free = [k for k in range(len(free_at)) if free_at[k] <= start]
        if free:
            slot = max(free, key=lambda k: free_at[k])
        else:
            slot = min(range(len(free_at)), key=lambda k: free_at[k])
        out[i] = slot
        free_at[slot] = max(free_at[slot], end)
    return out


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, sum, mean, min, 10th/50th/90th percentile and max of ``values``."""
    vals = sorted(values)
    if not vals:
        empty: dict[str, float | int | None] = dict.fromkeys(DISTRIBUTION_KEYS)
        return {**empty, "count": 0, "sum": 0.0}
    return {
        "count": len(vals),
        "sum": sum(vals),
        "mean": statistics.fmean(vals),
        "min": vals[0],
        "p10": _quantile(vals, 0.1),
        "median": statistics.median(vals),
        "p90": _quantile(vals, 0.9),
        "max": vals[-1],
    }


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values."""
    pos = q * (len(sorted_values) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def slot_summary(
    intervals: Sequence[tuple[float, float]], window: tuple[float, float]
) -> dict[str, Any]:
    """One slot's trials (``(start, end)``, sorted by start) within the trials' ``window``:
    busy time and fraction, idle gaps between one trial's end and the next one's start, the
    idle lead before its first trial and drain after its last one."""
    begin, finish = window
    span = finish - begin
    busy = sum(end - start for start, end in intervals)
    gaps = [nxt[0] - cur[1] for cur, nxt in zip(intervals, intervals[1:], strict=False)]
    return {
        "trials": len(intervals),
        "busy_s": busy,
        "busy_fraction": busy / span if span > 0 else None,
        "gaps": distribution([g for g in gaps if g >= 0]),
        "overlaps": sum(1 for g in gaps if g < 0),
        "lead_s": intervals[0][0] - begin if intervals else span,
        "drain_s": finish - intervals[-1][1] if intervals else 0.0,
    }


def epoch_times(trials: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Epoch durations split by whether another trial was running at the middle of the epoch
    (``concurrent``) or not (``alone``), epochs after the first; and each trial's start to its
    first epoch's end (``first_report``: worker set-up, model build, first epoch).

    A trial's ``worker_epochs`` (``[epoch, time_total_s, time_this_iter_s]`` from Tune, the
    worker's clock, placed at the trial's start) are used when present; else the gaps between
    its ``epoch_stamps`` (the driver's receipt times, which come in bursts)."""
    out: dict[str, list[float]] = {"concurrent": [], "alone": [], "first_report": []}
    for i, trial in enumerate(trials):
        others = [o for j, o in enumerate(trials) if j != i]
        for epoch, middle, seconds in _epochs_of(trial):
            if epoch == 1:
                out["first_report"].append(seconds)
                continue
            running = any(o["start"] <= middle <= o["end"] for o in others)
            out["concurrent" if running else "alone"].append(seconds)
    return out


def _epochs_of(trial: dict[str, Any]) -> list[tuple[int, float, float]]:
    """``(epoch, middle time, seconds)`` of each epoch of ``trial`` that can be timed."""
    start = trial["start"]
    worker = trial.get("worker_epochs")
    if worker:
        return [(int(e), start + total - this / 2, this) for e, total, this in worker]
    stamps = trial["epoch_stamps"]
    out = [(1, (start + stamps[0]) / 2, stamps[0] - start)] if stamps else []
    for k, (before, after) in enumerate(zip(stamps, stamps[1:], strict=False)):
        out.append((k + 2, (before + after) / 2, after - before))
    return out


def summarise_timeline(record: dict[str, Any], slots: int) -> dict[str, Any]:
    """Where the sweep's wall went, from :func:`read_sweep_record`'s times plus ``launch`` and
    ``exit`` of the process: start-up (launch to first trial start), the trials' window, each
    slot's busy fraction and idle gaps, the tail (last trial end to exit: registration and the
    parent run's end included) and epoch times alone and with another trial running. Every
    time in the result is in seconds after ``launch``."""
    launch, exit_ = record["launch"], record["exit"]
    trials = [t for t in record["trials"] if t["start"] and t["end"]]
    intervals = [(t["start"], t["end"]) for t in trials]
    assigned = assign_slots(intervals, slots)
    first = min((s for s, _ in intervals), default=launch)
    last = max((e for _, e in intervals), default=launch)
    per_slot = [
        slot_summary(
            sorted(iv for iv, s in zip(intervals, assigned, strict=True) if s == k), (first, last)
        )
        for k in range(max(1, slots))
    ]
    gaps = [s["gaps"] for s in per_slot]
    epochs = epoch_times(trials)
    return {
        "sources": TIME_SOURCES,
        "wall_s": exit_ - launch,
        "startup_s": first - launch,
        "launch_to_parent_start_s": record["parent_start"] - launch,
        "parent_start_to_first_trial_s": first - record["parent_start"],
        "trials_window_s": last - first,
        "tail_s": exit_ - last,
        "tail": _tail(record, last, exit_),
        "slots": per_slot,
        "gaps_total": {
            "count": sum(g["count"] for g in gaps),
            "sum_s": sum(g["sum"] for g in gaps),
        },
        "lead_total_s": sum(s["lead_s"] for s in per_slot),
        "drain_total_s": sum(s["drain_s"] for s in per_slot),
        "busy_fraction_of_wall": [s["busy_s"] / (exit_ - launch) for s in per_slot],
        "epoch_s": {k: distribution(v) for k, v in epochs.items()},
        "trials": [
            {
                "name": t["name"],
                "slot": slot,
                "start": t["start"] - launch,
                "end": t["end"] - launch,
                "epochs": t["epochs_trained"],
                "trial_time_s": t["trial_time_s"],
                "epoch_stamps": [round(s - launch, 3) for s in t["epoch_stamps"]],
            }
            for t, slot in zip(trials, assigned, strict=True)
        ],
    }


def _tail(record: dict[str, Any], last_end: float, exit_: float) -> dict[str, float | None]:
    """The tail split at the registered version's creation and the parent run's end."""
    registered, parent_end = record.get("registered"), record.get("parent_end")
    return {
        "last_trial_end_to_registered_s": registered - last_end if registered else None,
        "registered_to_parent_end_s": (
            parent_end - registered if registered and parent_end else None
        ),
        "last_trial_end_to_parent_end_s": parent_end - last_end if parent_end else None,
        "parent_end_to_exit_s": exit_ - parent_end if parent_end else None,
    }


def timeline_lines(timeline: dict[str, Any]) -> list[str]:
    """The timeline summary as a few lines of text."""
    lines = [
        f"wall {timeline['wall_s']:.1f}s = start-up {timeline['startup_s']:.1f}s (launch -> "
        f"parent run {timeline['launch_to_parent_start_s']:.1f}s, -> first trial "
        f"{timeline['parent_start_to_first_trial_s']:.1f}s) + trials "
        f"{timeline['trials_window_s']:.1f}s + tail {timeline['tail_s']:.1f}s",
    ]
    tail = timeline["tail"]
    lines.append(
        "tail: last trial end -> registered "
        f"{_num(tail['last_trial_end_to_registered_s'])}s -> parent end "
        f"{_num(tail['registered_to_parent_end_s'])}s -> exit "
        f"{_num(tail['parent_end_to_exit_s'])}s"
    )
    for k, slot in enumerate(timeline["slots"]):
        gaps = slot["gaps"]
        lines.append(
            f"slot {k}: {slot['trials']} trials, busy {slot['busy_s']:.1f}s "
            f"({_num(slot['busy_fraction'], '{:.1%}')} of the trials' window), idle gaps "
            f"{gaps['count']} summing {gaps['sum']:.1f}s (median "
            f"{_num(gaps['median'], '{:.2f}')}s, max {_num(gaps['max'], '{:.2f}')}s), "
            f"lead {slot['lead_s']:.1f}s, "
            f"drain {slot['drain_s']:.1f}s"
        )
    labels = {
        "concurrent": "epoch s, another trial running",
        "alone": "epoch s, alone",
        "first_report": "trial start to first epoch report s",
    }
    for key, label in labels.items():
        d = timeline["epoch_s"][key]
        lines.append(
            f"{label}: n={d['count']} median {_num(d['median'], '{:.3f}')} "
            f"p10 {_num(d['p10'], '{:.3f}')} p90 {_num(d['p90'], '{:.3f}')} "
            f"mean {_num(d['mean'], '{:.3f}')}"
        )
    return lines


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def save_gantt(timeline: dict[str, Any], record: dict[str, Any], path: Path, title: str) -> None:
    """A Gantt chart of the sweep: one row per worker slot, a bar per trial (hatched from its
    start to its first epoch report: worker set-up, model build, first epoch; epoch reports as
    ticks), and lines at parent start, first trial start, registration, parent end and exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slots = len(timeline["slots"])
    fig, ax = plt.subplots(figsize=(14, 1.4 + 0.9 * slots))
    for t in timeline["trials"]:
        _gantt_bar(ax, t)
    launch = record["launch"]
    marks = {
        "parent start": record["parent_start"] - launch,
        "first trial": timeline["startup_s"],
        "registered": record["registered"] - launch if record.get("registered") else None,
        "parent end": record["parent_end"] - launch if record.get("parent_end") else None,
        "exit": record["exit"] - launch,
    }
    for i, (label, when) in enumerate(marks.items()):
        if when is not None:
            ax.axvline(when, linestyle="--", linewidth=0.8, color="grey")
            top = slots - 0.4 - 0.2 * (i % 3)  # staggered: marks close together stay legible
            ax.text(when, top, f" {label}", fontsize=7, va="bottom", color="dimgrey")
    ax.set_yticks(range(slots))
    ax.set_yticklabels([f"slot {k}" for k in range(slots)])
    ax.set_ylim(-0.6, slots - 0.1)
    ax.set_xlim(0, record["exit"] - launch)
    ax.set_xlabel("seconds after launch")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _gantt_bar(ax: Any, trial: dict[str, Any]) -> None:
    """One trial on its slot's row: set-up hatched, training solid, epoch reports as ticks."""
    y, start, end = trial["slot"], trial["start"], trial["end"]
    stamps = trial["epoch_stamps"]
    first = stamps[0] if stamps else end
    style = {"height": 0.6, "edgecolor": "black", "linewidth": 0.5}
    ax.barh(y, first - start, left=start, color="lightgrey", hatch="///", **style)
    ax.barh(y, end - first, left=first, color=f"C{trial['slot']}", alpha=0.55, **style)
    ax.vlines(stamps, y - 0.3, y + 0.3, colors="black", linewidth=0.3)
    ax.text((start + end) / 2, y + 0.36, trial["name"].removeprefix("trial-"),
            ha="center", va="bottom", fontsize=6)  # fmt: skip
