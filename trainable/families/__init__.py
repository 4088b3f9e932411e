"""The model families shipped with the sweeper, each with its default spec beside it.

``sweep run`` with no spec runs :func:`default_spec`; ``sweep run NAME`` runs the shipped spec
``NAME.yaml`` from here when no file of that name exists in the working folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The spec ``sweep run`` runs when given none.
DEFAULT_SPEC = "abalone.yaml"


def specs_folder() -> Path:
    return Path(str(resources.files(__name__)))


def default_spec() -> Path:
    """The packaged default spec."""
    return specs_folder() / DEFAULT_SPEC


def shipped_specs() -> dict[str, Path]:
    """Shipped specs by name (file stem)."""
    return {p.stem: p for p in sorted(specs_folder().glob("*.yaml"))}
