"""Ctrl-C and SIGTERM during a sweep: stop, keep what is finished, and leave a resumable state.

Ray Tune catches the first SIGINT itself and then returns from ``Tuner.fit()`` as if the sweep
had ended, so a caller cannot tell an interrupted sweep from a finished one, and it ignores
SIGTERM (what ``ray job stop`` and a spot reclaim send). :class:`StopSignals` takes both
signals for the whole sweep command instead: while the trials run, the first one asks Tune to
stop the way its own SIGINT handler does (through the SIGUSR1 handler Tune installs for the
same purpose: trials stopped, experiment state saved for ``Tuner.restore``) and
:meth:`StopSignals.trials` then raises :class:`SweepInterrupted`; at any other moment, or on a
second signal, it raises :class:`SweepInterrupted` at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from sweeps.environment import temporarily

HANDLED = (signal.SIGINT, signal.SIGTERM)


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped by a signal; ``resume_hint`` says how to continue it, if known."""

    def __init__(self, signum: int, resume_hint: str | None = None) -> None:
        self.signum = signum
        self.resume_hint = resume_hint
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum

    def with_hint(self, resume_hint: str) -> SweepInterrupted:
        return SweepInterrupted(self.signum, resume_hint)


class StopSignals:
    """SIGINT and SIGTERM handlers for the duration of a ``with`` block (main thread only;
    elsewhere it does nothing and the default handlers stay)."""

    def __init__(self, notice: Callable[[str], None] | None = None) -> None:
        self.notice = notice  # told, once, that the trials are being stopped
        self.received: int | None = None
        self._in_trials = False
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def take_back(self) -> None:
        """Handle the signals again after ``ray.init``, which sets its own SIGTERM handler
        (exit at once) and, through Ray's core worker, a native one."""
        for signum in self._saved:
            signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._saved.clear()

    @contextlib.contextmanager
    def trials(self) -> Iterator[None]:
        """Around ``Tuner.fit()``: a first signal stops the trials gracefully, and the block
        then raises :class:`SweepInterrupted`."""
        self._in_trials = True
        try:
            # Tune's own SIGINT handler would swallow the first Ctrl-C; ours decides instead.
            with temporarily({"TUNE_DISABLE_SIGINT_HANDLER": "1"}):
                yield
        finally:
            self._in_trials = False
        if self.received is not None:
            raise SweepInterrupted(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        tune_stop = signal.getsignal(signal.SIGUSR1)
        if first and self._in_trials and callable(tune_stop):
            tune_stop(signum, frame)  # Tune's interrupt: stop trials, save the experiment
            if self.notice is not None:
                name = signal.Signals(signum).name
                self.notice(
                    f"{name}: stopping the trials and saving their state (again to stop now)"
                )
            return
        raise SweepInterrupted(self.received or signum)
