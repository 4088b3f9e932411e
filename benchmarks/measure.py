"""What the benchmark measures outside Python: the machine, and a subprocess's wall time and
peak memory summed over its whole process tree (Ray's raylet and workers included)."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

#: Seconds between samples of the tree's RSS. Listing a tree's processes scans all of /proc:
#: at 0.2 s the benchmark itself used about 15 % of a core beside a sweep, on two cores.
#: The root's own peak is exact at any interval (the kernel's high-water mark).
SAMPLE_INTERVAL_S = 1.0
#: PSS costs the kernel a page-table walk per process (about 5 ms for a TensorFlow process, so
#: over 50 ms of a core per sample of a sweep's tree): taken at most this often, and only
#: while the tree's RSS is near its peak, so the measuring does not slow what it measures.
PSS_INTERVAL_S = 1.0
PSS_NEAR_PEAK = 0.9
LEFTOVER_GRACE_S = 3.0
PACKAGES = ("tensorflow", "keras", "ray", "optuna", "mlflow", "scikit-learn")
MB = 1024 * 1024


def import_psutil() -> ModuleType | None:
    """psutil if installed, else the copy Ray vendors in ``ray/thirdparty_files``, else None."""
    try:
        import psutil

        return psutil
    except ImportError:
        pass
    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.submodule_search_locations:
        return None
    vendored = Path(next(iter(spec.submodule_search_locations))) / "thirdparty_files"
    if not (vendored / "psutil").is_dir():
        return None
    sys.path.append(str(vendored))
    try:
        import psutil
    except ImportError:
        return None
    return psutil


def machine_info() -> dict[str, Any]:
    """CPU model, core count, RAM, load average and library versions of this machine."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "ram_gb": _ram_gb(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@dataclass
class TreeStats:
    """Peak memory of a process tree, summed over its live members at each sample."""

    peak_rss_mb: float | None = None
    peak_pss_mb: float | None = None
    #: The root process's own peak RSS: the kernel's high-water mark (``VmHWM``) where it can
    #: be read, else the largest sampled RSS.
    root_peak_rss_mb: float | None = None
    #: CPU seconds (user + system) the root process itself used, as of the last sample.
    root_cpu_s: float | None = None
    max_processes: int = 0
    names: set[str] = field(default_factory=set)
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create time, descendants only


class TreeSampler:
    """Samples ``psutil.Process(pid)`` and ``children(recursive=True)`` on demand.

    RSS counts shared pages (TensorFlow's libraries, Ray's object store) once per process, so
    its sum overstates the tree's footprint; PSS splits shared pages between their users.
    """

    def __init__(self, pid: int) -> None:
        self.psutil = import_psutil()
        self.stats = TreeStats()
        self.root = self.psutil.Process(pid) if self.psutil else None
        self._next_pss = 0.0

    def sample(self) -> None:
        """Add one sample of the tree's memory to :attr:`stats` (RSS always, PSS sometimes)."""
        if self.root is None:
            return
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except self.psutil.Error:
            return
        rss = 0
        for proc in procs:
            try:
                proc_rss = proc.memory_info().rss
                rss += proc_rss
                if proc.pid == self.root.pid:
                    own = max(proc_rss, _high_water_mark(proc.pid) or 0) / MB
                    self.stats.root_peak_rss_mb = max(self.stats.root_peak_rss_mb or 0.0, own)
                    cpu = proc.cpu_times()
                    self.stats.root_cpu_s = cpu.user + cpu.system
                if proc.pid != self.root.pid:
                    self.stats.seen.setdefault(proc.pid, proc.create_time())
                    self.stats.names.add(proc.name())
            except self.psutil.Error:
                continue
        self.stats.max_processes = max(self.stats.max_processes, len(procs))
        self.stats.peak_rss_mb = max(self.stats.peak_rss_mb or 0.0, rss / MB)
        now = time.monotonic()
        if rss / MB >= PSS_NEAR_PEAK * self.stats.peak_rss_mb and now >= self._next_pss:
            self._next_pss = now + PSS_INTERVAL_S
            sizes = [size for size in map(_pss, (p.pid for p in procs)) if size is not None]
            if sizes:  # no smaps_rollup: not Linux
                self.stats.peak_pss_mb = max(self.stats.peak_pss_mb or 0.0, sum(sizes) / MB)

    def end_leftovers(self) -> int:
        """Terminate (by pid) descendants seen earlier that outlived the root; return how many."""
        if self.psutil is None:
            return 0
        time.sleep(LEFTOVER_GRACE_S if self._alive() else 0)
        alive = self._alive()
        for proc in alive:
            proc.terminate()
        _, still = self.psutil.wait_procs(alive, timeout=5)
        for proc in still:
            proc.kill()
        return len(alive)

    def _alive(self) -> list[Any]:
        alive = []
        for pid, created in self.stats.seen.items():
            try:
                proc = self.psutil.Process(pid)
                if proc.create_time() == created and proc.status() != self.psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except self.psutil.Error:
                continue
        return alive


def _high_water_mark(pid: int) -> int | None:
    """Peak RSS of ``pid`` in bytes so far, from ``/proc/PID/status`` (``VmHWM``, Linux)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _pss(pid: int) -> int | None:
    """Proportional set size of ``pid`` in bytes, from ``/proc/PID/smaps_rollup`` (Linux)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


@dataclass
class Measured:
    """One finished subprocess: exit code, wall time and its tree's peak memory."""

    returncode: int
    wall_s: float
    tree: TreeStats
    leftovers: int
    log: Path
    timed_out: bool = False

    def log_tail(self, lines: int = 25) -> str:
        """The last ``lines`` lines of the subprocess's combined output."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_measured(
    cmd: list[str], cwd: Path, env: dict[str, str], log: Path, timeout_s: float
) -> Measured:
    """Run ``cmd`` to completion (output to ``log``), sampling its process tree every 0.2 s."""
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        timed_out = False
        while True:
            sampler.sample()
            try:
                proc.wait(timeout=SAMPLE_INTERVAL_S)
                break
            except subprocess.TimeoutExpired:
                if time.perf_counter() - started > timeout_s:
                    timed_out = True
                    proc.kill()
                    proc.wait()
                    break
    wall = time.perf_counter() - started
    leftovers = sampler.end_leftovers()
    return Measured(proc.returncode, wall, sampler.stats, leftovers, log, timed_out)
