"""Registration in a child process, so the driver never loads TensorFlow.

The child (``python -m sweeps.registration``) does its slow start-up (MLflow, and what the
family's models need: TensorFlow and Keras for a Keras family, about 4 s) as soon as it is
started, then waits for its job. The sweep starts it while the last trials run, on a core the
finished trials freed (:class:`StartWhenCoresFree`), and the registration itself runs while the
driver writes the summary artifacts.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ray.tune import Callback

from sweeps.environment import child_env
from sweeps.registration.job import RegistrationJob

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from sweeps.registration.registry import Registration

LOG_TAIL_LINES = 25

__all__ = ["RegistrationFailed", "Registrar", "RegistrationJob", "StartWhenCoresFree"]


class RegistrationFailed(RuntimeError):
    """The registrar's child process failed; the message ends with its error output."""

    @property
    def brief(self) -> str:
        """The first line and the child's last line (its error), for a terminal."""
        lines = [line for line in str(self).splitlines() if line.strip()]
        return lines[0] if len(lines) < 2 else f"{lines[0]} {lines[-1]}"


class Registrar:
    """One child process that registers one model: :meth:`start` early, then :meth:`submit`
    and :meth:`result`; :meth:`close` always."""

    def __init__(self, tracking_uri: str, trainable: str, folder: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.trainable = trainable  # MODULE:ATTR of the model family
        self.folder_of_spec = folder
        self._proc: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None

    def folder(self, name: str) -> str:
        """A path inside this registrar's private temporary folder (deleted by close)."""
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="sweep-registrar-")
        return os.path.join(self._folder.name, name)

    def start(self) -> None:
        """Start the child, which begins its imports at once (does nothing the second time)."""
        if self._proc is not None:
            return
        self._log = open(self.folder("registrar.log"), "w+b")  # noqa: SIM115
        env = {**os.environ, **child_env()}
        # The driver's import path: the family's module imported there must import here too.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        command = [sys.executable, "-m", "sweeps.registration", self.tracking_uri]
        command += [self.trainable, *([self.folder_of_spec] if self.folder_of_spec else [])]
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,  # MLflow's own "registered model" lines; shown only on failure
            env=env,
        )

    def submit(self, job: RegistrationJob) -> None:
        """Hand ``job`` to the child (starting it if needed); :meth:`result` waits for it."""
        self.start()
        assert self._proc is not None and self._proc.stdin is not None and self._folder
        path = Path(self.folder("job.pkl"))
        path.write_bytes(pickle.dumps(job))
        try:
            self._proc.stdin.write(f"{path}\n".encode())
            self._proc.stdin.close()
        except BrokenPipeError:
            pass  # the child already died; result() reports why

    def result(self) -> Registration:
        """Wait for the child; its registration, or RegistrationFailed with its error."""
        assert self._proc is not None and self._folder is not None
        code = self._proc.wait()
        out = Path(self.folder("job.out"))
        if code == 0 and out.exists():
            return pickle.loads(out.read_bytes())
        raise RegistrationFailed(
            f"registering the best model failed (exit code {code}):\n{self._log_tail()}"
        )

    def close(self) -> None:
        """Stop the child if it is still running and delete its files."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._log is not None:
            self._log.close()
        if self._folder is not None:
            self._folder.cleanup()
        self._proc = self._log = self._folder = None

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])


class StartWhenCoresFree(Callback):
    """Tune callback: start ``registrar`` once no trial is left to start and a trial slot is
    free for good, i.e. after ``num_samples - max_concurrent + 1`` trials ended. (Started with
    the trials instead, its start-up slows them by about as much as it saves at the end, and
    it holds another TensorFlow in memory all along.)"""

    def __init__(
        self, registrar: Registrar, num_samples: int, max_concurrent: int, already_done: int = 0
    ) -> None:
        self.registrar = registrar
        self.threshold = max(1, num_samples - max_concurrent + 1)
        self.done = already_done

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self._ended()

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self._ended()

    def _ended(self) -> None:
        self.done += 1
        if self.done >= self.threshold:
            self.registrar.start()
