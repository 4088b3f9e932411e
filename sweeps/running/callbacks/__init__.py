"""Ray Tune callbacks of a running sweep: trials into MLflow child runs (``trial_runs``), the
progress line (``progress``), and the picklable proxy Tune keeps (``live``).
"""
