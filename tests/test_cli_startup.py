"""`sweep --help` and `sweep validate` stay light: no TensorFlow, no Ray."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import DEFAULT_SPEC

PROBE = """
import sys
from typer.testing import CliRunner
from sweeps.cli import app
result = CliRunner().invoke(app, {args!r})
assert result.exit_code == 0, result.output
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & {{'tensorflow', 'keras', 'ray'}})
print('HEAVY=' + ','.join(heavy))
"""


def _heavy_modules_after(args: list[str], cwd) -> str:
    # Not a tracking URI an earlier test left behind (mlflow.set_tracking_uri exports it).
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().rsplit("HEAVY=", 1)[1]


def test_help_imports_neither_tensorflow_nor_ray(tmp_path):
    assert _heavy_modules_after(["--help"], tmp_path) == ""


def test_validate_imports_neither_tensorflow_nor_ray(tmp_path):
    assert _heavy_modules_after(["validate", str(DEFAULT_SPEC)], tmp_path) == ""
