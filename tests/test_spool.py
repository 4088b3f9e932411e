"""The journal of MLflow writes (``mlflow-spool.jsonl``) after a driver died mid-append."""

from __future__ import annotations

import logging

from sweeps.record.spool import SPOOL_FILE, Spool


def _torn_journal(folder) -> Spool:
    """A journal with one whole record, then a record cut short (no newline): a driver killed
    while it appended."""
    spool = Spool(folder)
    spool.append("tag_parent", [{"a": "1"}])
    with open(folder / SPOOL_FILE, "a") as fh:
        fh.write('{"id": 1, "op": "log_par')
    return Spool(folder)  # the next driver (resume or sync) opens it


def test_a_record_after_a_torn_line_is_kept(tmp_path):
    spool = _torn_journal(tmp_path)
    entry = spool.append("tag_parent", [{"b": "2"}])
    assert [(op, args) for _, op, args in spool.pending()] == [
        ("tag_parent", [{"a": "1"}]),
        ("tag_parent", [{"b": "2"}]),
    ]
    spool.done(entry)
    assert [args for _, _, args in spool.pending()] == [[{"a": "1"}]]


def test_a_torn_line_is_skipped_with_a_warning(tmp_path, caplog):
    spool = _torn_journal(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sweeps.record.spool"):
        pending = spool.pending()
    assert len(pending) == 1
    assert "line 2 is torn" in caplog.text
