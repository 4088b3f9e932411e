"""Errors the user can fix. The CLI prints them as plain lines (no traceback) and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    ``problems`` holds one line per problem so several can be reported at once.
    """

    def __init__(self, *problems: str) -> None:
        self.problems = [p for p in problems if p] or ["invalid input"]
        super().__init__("\n".join(self.problems))


class SpecError(UserError):
    """The sweep spec (YAML or a ``--set`` override) is invalid."""


class PreflightError(UserError):
    """A check before any trial failed: data, tracking server, storage or trainable."""
