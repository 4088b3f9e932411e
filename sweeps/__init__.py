"""The driver: everything about a sweep except the model (that is a family's, in ``trainable``).

Subpackages, by concern (ARCHITECTURE.md has the flow of one sweep through them):

- ``config``        what the user asks for: the spec and its search space
- ``running``       running a sweep: checks, the sweep itself, trials on Ray Tune, resume state
- ``record``        the MLflow record: client helpers, the background writer, runs, artifacts
- ``registration``  the best model into the registry, in a child process (``__main__``)
- ``views``         what the CLI shows: the end of a sweep, and past sweeps from MLflow
- ``cluster``       a sweep on a Ray cluster (the Jobs API) and SageMaker specifics

Top-level modules: ``cli`` (the ``sweep`` command), ``results`` (what a sweep produced),
``errors`` (user errors), ``environment`` (environment defaults), ``quiet`` (log noise).
The driver never imports TensorFlow; only the registration child does.
"""
