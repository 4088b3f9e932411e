"""What the CLI shows: the end of a sweep (``outcome``), and past sweeps read from MLflow
(``queries``, shown by ``tables``).
"""
