"""The MLflow record of a sweep: client helpers (``client``), the ordered background writer
(``writer``), the parent and trial runs (``runs``) and the summary artifacts (``artifacts``).
"""
