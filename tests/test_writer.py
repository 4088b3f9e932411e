"""The background MLflow writer: in order, retried through outages, bad requests dropped."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from sweeps.record.writer import BackgroundWriter


def test_calls_run_in_the_order_submitted():
    writer = BackgroundWriter()
    done: list[int] = []
    for i in range(20):
        writer.submit(f"call {i}", lambda i=i: done.append(i))
    assert writer.close(timeout_s=10)
    assert done == list(range(20))


def test_a_failing_call_is_retried_until_it_succeeds_and_later_calls_wait():
    writer = BackgroundWriter(retry_initial_s=0.01, retry_max_s=0.05)
    attempts: list[str] = []

    def flaky() -> None:
        attempts.append("try")
        if len(attempts) < 3:
            raise ConnectionError("connection refused")

    writer.submit("flaky", flaky)
    writer.submit("after", lambda: attempts.append("after"))
    assert writer.close(timeout_s=10)
    assert attempts == ["try", "try", "try", "after"]
    assert writer.dropped == []


def test_a_request_the_server_rejects_is_dropped_not_retried():
    writer = BackgroundWriter(retry_initial_s=0.01)
    calls: list[str] = []

    def rejected() -> None:
        calls.append("rejected")
        raise MlflowException("param changed", error_code=INVALID_PARAMETER_VALUE)

    writer.submit("log params", rejected)
    writer.submit("next", lambda: calls.append("next"))
    assert writer.close(timeout_s=10)
    assert calls == ["rejected", "next"]
    assert len(writer.dropped) == 1 and "log params" in writer.dropped[0]


def test_flush_reports_a_timeout_while_the_server_is_away():
    writer = BackgroundWriter(retry_initial_s=0.05, retry_max_s=0.05)
    server_up = False

    def call() -> None:
        if not server_up:
            raise ConnectionError("down")

    writer.submit("log", call)
    assert writer.flush(timeout_s=0.3) is False
    server_up = True
    assert writer.close(timeout_s=10)


def test_a_bug_in_a_call_is_dropped_at_once_not_retried_forever():
    writer = BackgroundWriter(retry_initial_s=0.01)
    calls: list[str] = []

    def buggy() -> None:
        calls.append("buggy")
        raise KeyError("trial_00001")  # e.g. a trial the writer knows nothing about

    writer.submit("log steps", buggy)
    assert writer.close(timeout_s=10)
    assert calls == ["buggy"]
    assert "KeyError" in writer.dropped[0]


def test_server_errors_and_rate_limits_are_retried_client_errors_are_not():
    from mlflow.protos.databricks_pb2 import (
        PERMISSION_DENIED,
        REQUEST_LIMIT_EXCEEDED,
        RESOURCE_DOES_NOT_EXIST,
        TEMPORARILY_UNAVAILABLE,
    )

    from sweeps.record.writer import is_retriable

    assert is_retriable(MlflowException("503", error_code=TEMPORARILY_UNAVAILABLE))
    assert is_retriable(MlflowException("429", error_code=REQUEST_LIMIT_EXCEEDED))
    assert is_retriable(MlflowException("API request failed with exception refused"))
    assert is_retriable(TimeoutError("read timed out"))
    assert not is_retriable(MlflowException("403", error_code=PERMISSION_DENIED))
    assert not is_retriable(MlflowException("404", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_retriable(ValueError("bad value"))


def test_pending_names_what_is_still_unsent_while_the_server_is_away():
    writer = BackgroundWriter(retry_initial_s=0.05, retry_max_s=0.05)
    server_up = False

    def call() -> None:
        if not server_up:
            raise ConnectionError("down")

    writer.submit("end the parent run", call)
    writer.submit("log summary/", lambda: None)
    assert writer.flush(timeout_s=0.2) is False
    assert writer.pending == ["end the parent run", "log summary/"]
    server_up = True
    assert writer.close(timeout_s=10)
    assert writer.pending == []
