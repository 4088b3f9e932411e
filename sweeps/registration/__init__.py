"""The best model into the registry, in a child process (``python -m sweeps.registration``): the
driver side (``registrar``), the job it hands over (``job``), and what the child does
(``registry``).
"""
