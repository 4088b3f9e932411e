"""Running a sweep: the checks before it (``preflight``), the sweep itself (``sweep``), its trials
on Ray Tune (``trials``, ``search``, ``callbacks``), the local Ray (``ray_runtime``), storage
paths (``storage``) and the state a resume reads (``resume``).
"""
