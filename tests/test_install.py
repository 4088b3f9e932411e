"""The README's two commands are what CI runs, and the lock they install from covers
``pyproject.toml``: every dependency pinned, each pin inside the range the project declares."""

from __future__ import annotations

import re
import shlex

import pytest
from helpers import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

README = (REPO / "README.md").read_text()
CI_RUN = (REPO / ".ci" / "run").read_text()
LOCK = REPO / "requirements" / "constraints.txt"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _quick_start_commands() -> list[str]:
    """The bash blocks of README's Quick start, in order."""
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)]


def _ci_commands() -> list[str]:
    return [
        line.strip()
        for line in CI_RUN.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _pins() -> dict[str, list[Requirement]]:
    pins: dict[str, list[Requirement]] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            pins.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return pins


PINS = _pins()


def _declared() -> list[Requirement]:
    optional = PYPROJECT["project"]["optional-dependencies"]
    declared = PYPROJECT["project"]["dependencies"] + optional["dev"] + optional["gp"]
    return [Requirement(r) for r in declared]


def test_ci_runs_exactly_the_readme_test_command():
    test = _quick_start_commands()[1]
    assert test == "python -m pytest"
    assert _ci_commands()[-1] == test


def test_the_readme_install_and_ci_both_install_from_the_lock():
    install = _quick_start_commands()[0]
    assert "-c requirements/constraints.txt" in install
    ci_install = next(c for c in _ci_commands() if "pip install" in c)
    words = shlex.split(ci_install)
    assert words[words.index("-c") + 1] == "requirements/constraints.txt"
    assert "-e" in words and words[words.index("-e") + 1].startswith(".[dev")


@pytest.mark.parametrize("requirement", _declared(), ids=lambda r: r.name)
def test_every_declared_dependency_is_pinned_inside_its_declared_range(requirement):
    pins = PINS.get(canonicalize_name(requirement.name))
    assert pins, f"{requirement.name} is not in {LOCK.name}: refresh the lock (README, Tests)"
    for pin in pins:
        (exact,) = pin.specifier
        assert exact.operator == "==", pin
        assert requirement.specifier.contains(exact.version, prereleases=True), (pin, requirement)
