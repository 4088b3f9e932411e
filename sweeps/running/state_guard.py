"""Tune's saved state is unpickled by ``sweep resume``; trial code can write the storage it lives
in (the workers' role holds the storage prefix). So the driver records the sha256 of every
state file it leaves on the sweep's MLflow parent run, where trial code cannot write, and a
resume checks the files against that record before ``Tuner.restore`` reads them.
"""

from __future__ import annotations

import json

from sweeps.errors import PreflightError
from sweeps.running import storage

#: Tune's experiment state files at the top of a sweep's folder (pickles, or JSON holding
#: pickled objects), all read by ``Tuner.restore``.
STATE_PREFIXES = ("tuner.pkl", "experiment_state-", "searcher-state-", "search_gen_state-")
TAG_STATE_DIGESTS = "sweep.state_sha256"


def digests(folder: str) -> dict[str, str]:
    """The sha256 of each Tune state file in the sweep's ``folder``."""
    return storage.file_digests(folder, STATE_PREFIXES)


def record(folder: str) -> str:
    """The tag value recording the state files as the driver leaves them."""
    return json.dumps(digests(folder), sort_keys=True)


def check(folder: str, recorded: str | None) -> str | None:
    """Check the state files in ``folder`` against the ``recorded`` tag value; returns a
    warning if there is no record (the driver was killed before it could write one).

    Raises:
        PreflightError: a state file was changed or added since the driver recorded it.
    """
    if not recorded:
        return (
            "the saved sweep state could not be verified: its driver ended without recording "
            "it (killed); resuming from it as it is"
        )
    expected = json.loads(recorded)
    for name, digest in sorted(digests(folder).items()):
        if expected.get(name) != digest:
            change = "was changed" if name in expected else "was added"
            raise PreflightError(
                f"resume: {storage.join(folder, name)} {change} after the sweep's driver left "
                "it (trial code can write the storage); refusing to load it. Restore the file "
                "or start a new sweep"
            )
    return None
