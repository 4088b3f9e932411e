"""Real multi-node Ray on one machine: `ray start` processes on loopback, each with its own
temp dir and ports, found and stopped by PID (never a bare `ray stop`)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field

import psutil
from servers import free_port

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


WORKER_PORTS = 40  # per node


def worker_port_range(size: int = WORKER_PORTS) -> int:
    """The low end of a free block of ``size`` + 1 worker ports below Linux's ephemeral range
    (32768+), so it can never overlap the single ports :func:`free_port` hands out."""
    for _ in range(200):
        low = random.randrange(20000, 32768 - size)
        if all(_is_free(port) for port in range(low, low + size + 1)):
            return low
    raise RuntimeError("no free block of worker ports")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class RayNode:
    """One `ray start` node; ``temp_dir`` is short (Unix socket paths have a length limit)."""

    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="rn", dir="/tmp"))

    def start(self, num_cpus: int, head_port: int | None = None) -> int:
        """Start the node (a head if ``head_port`` is None); return the head's GCS port."""
        ports = {
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--runtime-env-agent-port": free_port(),
            "--metrics-export-port": free_port(),
        }
        low = worker_port_range()
        command = [
            "ray", "start", f"--num-cpus={num_cpus}", f"--temp-dir={self.temp_dir}",
            "--node-ip-address=127.0.0.1", "--disable-usage-stats",
            f"--min-worker-port={low}", f"--max-worker-port={low + WORKER_PORTS}",
            *(f"{flag}={port}" for flag, port in ports.items()),
        ]  # fmt: skip
        if head_port is None:
            head_port = free_port()
            command += [
                "--head", f"--port={head_port}", "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}",
            ]  # fmt: skip
        else:
            command += [f"--address=127.0.0.1:{head_port}"]
        subprocess.run(
            command, env={**os.environ, **RAY_ENV}, check=True, capture_output=True, timeout=120
        )
        return head_port

    def processes(self) -> list[psutil.Process]:
        """This node's Ray processes and all their descendants (trial workers included)."""
        roots = []
        for proc in psutil.process_iter(["cmdline"]):
            if any(self._names_temp_dir(part) for part in proc.info["cmdline"] or []):
                roots.append(proc)
        found = {p.pid: p for p in roots}
        for root in roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                found.update({c.pid: c for c in root.children(recursive=True)})
        return list(found.values())

    def _names_temp_dir(self, arg: str) -> bool:
        """``arg`` is this node's temp dir or a path inside it (never a longer name that merely
        starts with it, which may be another node's or another user's Ray)."""
        return (
            arg.endswith(f"={self.temp_dir}")
            or arg == self.temp_dir
            or (f"{self.temp_dir}/" in arg)
        )

    def running_trial(self) -> bool:
        """A Tune trial actor (``ray::ImplicitFunc``) is running on this node."""
        for proc in self.processes():
            try:
                if "ImplicitFunc" in " ".join(proc.cmdline()):
                    return True
            except psutil.NoSuchProcess:
                continue
        return False

    def kill(self) -> None:
        """SIGKILL every process of this node: a node lost, not shut down."""
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
