"""The OpenTelemetry subscriber: one span per run, recorded with the real SDK and its in-memory
exporter; without the ``otel`` extra the module still imports and creating a subscriber says
what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.retry import RetryPolicy
from meerkat_runtime.session.testing import Block, Fail, ScriptedExecutor, Succeed

from tests.runtime_session.helpers import make_prompt, persistent, run

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is installed by ./run test")
from meerkat_runtime.events.otel import OpenTelemetrySubscriber  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402


def _recording() -> tuple[OpenTelemetrySubscriber, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetrySubscriber(tracer_provider=provider), exporter


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_one_span_per_run_with_its_outcome_and_error() -> None:
    subscriber, exporter = _recording()

    async def body() -> None:
        m = MeerkatMachine.ephemeral(retry=RetryPolicy(max_attempts=2))
        m.events.subscribe(subscriber)
        executor = ScriptedExecutor(Fail("first"), Succeed(), Fail("x1"), Fail("x2"))
        await m.register_session_with_executor("s", executor)
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        await m.settle("s")
        await m.accept_input("s", make_prompt("b", input_id="in-b"))
        await m.settle("s")
        await m.close()

    run(body())
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
    assert [s.name for s in spans] == ["meerkat.run"] * 4
    assert [_attrs(s)["meerkat.rule"] for s in spans] == [
        "executor_failed",
        "executor_succeeded",
        "executor_failed",
        "executor_failed_exhausted",
    ]
    assert [_attrs(s)["meerkat.outcome"] for s in spans] == ["requeued", "consumed", "requeued", "abandoned"]
    assert [_attrs(s)["meerkat.input_id"] for s in spans] == ["in-a", "in-a", "in-b", "in-b"]
    assert [_attrs(s)["meerkat.attempt"] for s in spans] == [1, 2, 1, 2]
    assert [s.status.status_code for s in spans] == [
        StatusCode.ERROR,
        StatusCode.OK,
        StatusCode.ERROR,
        StatusCode.ERROR,
    ]
    first = spans[0]
    assert first.status.description == "ExecutorError: first"
    assert _attrs(first)["error.type"] == "ExecutorError"
    exception = [e for e in first.events if e.name == "exception"]
    assert len(exception) == 1 and dict(exception[0].attributes or {})["exception.message"] == "first"
    assert _attrs(spans[3])["meerkat.max_attempts"] == 2
    run_ids = {_attrs(s)["meerkat.run_id"] for s in spans}
    assert len(run_ids) == 4 and "" not in run_ids
    for span in spans:
        assert span.parent is None  # a run is a root span
        assert span.start_time is not None and span.end_time is not None and span.start_time <= span.end_time
        assert _attrs(span)["meerkat.session_id"] == "s"
    assert subscriber.open_runs == 0


def test_a_run_in_flight_records_control_events_and_a_stop_ends_it() -> None:
    subscriber, exporter = _recording()

    async def body() -> None:
        m, _ = persistent(ownership=None)
        m.events.subscribe(subscriber)
        executor = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", executor)
        await m.accept_input("s", make_prompt("a", input_id="in-a"))
        await m.settle("s")
        assert subscriber.open_runs == 1
        await m.retire_runtime("s")
        await m.stop_runtime("s")
        await m.close()

    run(body())
    (span,) = exporter.get_finished_spans()
    assert _attrs(span)["meerkat.rule"] == "stop_with_loop"
    assert _attrs(span)["meerkat.outcome"] == "stop_with_loop"
    assert span.status.status_code is StatusCode.UNSET
    retire = [e for e in span.events if e.name == "retire"]
    assert len(retire) == 1 and dict(retire[0].attributes or {})["meerkat.after"] == "Retired"


def test_close_ends_the_spans_still_open() -> None:
    subscriber, exporter = _recording()

    async def body() -> None:
        m = MeerkatMachine.ephemeral()
        m.events.subscribe(subscriber)
        executor = ScriptedExecutor(Block())
        await m.register_session_with_executor("s", executor)
        await m.accept_input("s", make_prompt("a"))
        await m.settle("s")
        subscriber.close()
        executor.release(Succeed())
        await m.close()

    run(body())
    spans = exporter.get_finished_spans()
    assert [_attrs(s)["meerkat.outcome"] for s in spans] == ["open"]
    assert subscriber.open_runs == 0


def test_without_the_extra_the_module_imports_and_the_subscriber_says_what_to_install() -> None:
    script = textwrap.dedent(
        """
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "opentelemetry":
                    raise ImportError("not installed: " + name)
                return None
        sys.meta_path.insert(0, Blocker())
        from meerkat_runtime.events.otel import OpenTelemetrySubscriber, OpenTelemetryUnavailable
        try:
            OpenTelemetrySubscriber()
        except OpenTelemetryUnavailable as exc:
            assert isinstance(exc, ImportError)
            print("refused:", exc)
        else:
            raise SystemExit("created a subscriber without opentelemetry")
        assert not any(m.split(".")[0] == "opentelemetry" for m in sys.modules)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "meerkat-lifecycle[otel]" in proc.stdout
