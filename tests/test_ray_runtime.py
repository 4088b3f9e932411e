"""The driver's local Ray stops in the background while the driver goes on (a subprocess:
the test session's own Ray lives in this process)."""

from __future__ import annotations

import subprocess
import sys

from helpers import cli_env

PROBE = """
import psutil
import ray
from sweeps.running.ray_runtime import init_ray, stop_local_ray_in_background, wait_for_ray_to_stop

init_ray()

@ray.remote
def answer():
    return 42

print("ANSWER=" + str(ray.get(answer.remote())))
stop_local_ray_in_background()
wait_for_ray_to_stop()
print("STOPPED=" + str(not ray.is_initialized()))
left = [p.name() for p in psutil.Process().children(recursive=True) if p.is_running()]
print("LEFT=" + ",".join(left))
"""


def test_a_local_ray_started_here_stops_in_the_background(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ANSWER=42" in done.stdout
    assert "STOPPED=True" in done.stdout
    assert "LEFT=\n" in done.stdout  # no raylet, GCS or worker outlives the shutdown
