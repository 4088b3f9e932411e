"""Driver-only Tune callbacks behind a picklable proxy.

Tune pickles its RunConfig (callbacks included) into the experiment folder so that
``Tuner.restore`` can rebuild it. Our callbacks hold live objects (an MLflow writer thread, a
terminal progress bar) that cannot be pickled and must be new in a resumed driver anyway, so
Tune gets a :class:`LiveCallbacks` proxy that only stores a key; the driver attaches the live
callbacks under that key before ``fit()``.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback, Stopper

_ATTACHED: dict[str, list[Callback]] = {}

_HOOKS = (
    "on_trial_start",
    "on_trial_restore",
    "on_trial_result",
    "on_trial_complete",
    "on_trial_recover",
    "on_trial_error",
    "on_experiment_end",
)


def attach(key: str, callbacks: list[Callback]) -> None:
    """Make ``callbacks`` receive the events of the sweep ``key``."""
    _ATTACHED[key] = list(callbacks)


def detach(key: str) -> None:
    _ATTACHED.pop(key, None)


class LiveCallbacks(Callback):
    """Forwards Tune's trial events to the callbacks attached under ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __getstate__(self) -> dict[str, Any]:
        return {"key": self.key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.key = state["key"]

    def _forward(self, hook: str, *args: Any, **kwargs: Any) -> None:
        for callback in _ATTACHED.get(self.key, ()):
            getattr(callback, hook)(*args, **kwargs)


def _make_hook(name: str):
    def hook(self: LiveCallbacks, *args: Any, **kwargs: Any) -> None:
        self._forward(name, *args, **kwargs)

    hook.__name__ = name
    return hook


for _name in _HOOKS:
    setattr(LiveCallbacks, _name, _make_hook(_name))


_STOPPERS: dict[str, Stopper] = {}


def attach_stopper(key: str, stopper: Stopper) -> None:
    """Make ``stopper`` decide for the sweep ``key`` (see :class:`LiveStopper`)."""
    _STOPPERS[key] = stopper


def detach_stopper(key: str) -> None:
    _STOPPERS.pop(key, None)


class LiveStopper(Stopper):
    """Asks the stopper attached under ``key`` (none attached: never stops); picklable like
    :class:`LiveCallbacks`, so a resumed sweep's rules are the resumed driver's."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        stopper = _STOPPERS.get(self.key)
        return bool(stopper and stopper(trial_id, result))

    def stop_all(self) -> bool:
        stopper = _STOPPERS.get(self.key)
        return bool(stopper and stopper.stop_all())
