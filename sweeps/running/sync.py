"""MLflow writes a sweep's driver journaled but could not send (an outage that outlasted it, or
its death), sent by ``sweep sync`` and before ``sweep resume`` continues."""

from __future__ import annotations

from rich.console import Console

from sweeps.record.client import (
    make_client,
    quick_requests,
    redact_uri,
    resolve_tracking_uri,
    scrub_urls,
)
from sweeps.record.runs import SweepTracker
from sweeps.running import resume
from sweeps.running.lease import Lease


def sync_sweep(target: str, console: Console | None = None) -> int:
    """Send the MLflow writes a sweep's driver journaled but could not send (an outage that
    outlasted it, or its death). Returns how many were sent.

    Raises:
        UserError: no such sweep, or its tracking store is still unreachable.
    """
    from sweeps.config.spec import validate_spec

    console = console or Console(stderr=True)
    folder = resume.locate_sweep(target)
    state = resume.load_state(folder)
    spec = validate_spec(state["spec"], source=f"{folder}/{resume.STATE_FILE}")
    uri = resolve_tracking_uri(spec.tracking.uri)
    with Lease.take(folder).released():
        tracker = SweepTracker.reopen(make_client(uri), state["parent_run_id"], folder)
        return replay_unsent(tracker, console, uri)


def replay_unsent(tracker: SweepTracker, console: Console, tracking_uri: str) -> int:
    """Send what a previous driver of this sweep left journaled, saying so if anything."""
    from sweeps.errors import PreflightError

    pending = len(tracker.spool.pending()) if tracker.spool else 0
    if not pending:
        return 0
    console.print(f"sending {pending} MLflow writes a previous driver could not send...")
    try:
        with quick_requests():
            return tracker.replay()
    except Exception as exc:  # noqa: BLE001 - reported with the address, kept for later
        raise PreflightError(
            f"tracking.uri: {redact_uri(tracking_uri)} still does not take the sweep's "
            f"{pending} unsent writes ({scrub_urls(str(exc).splitlines()[0])[:200]}); they stay "
            f"in {tracker.spool.path if tracker.spool else '?'}"
        ) from None
