"""Every field of an executor's output checked before its boundary is committed.

A run's output is stored with its boundary: the receipt draft becomes the boundary receipt, the
session snapshot is written with it, and the run result is kept with the consumed input (what
its waiters, and later duplicates of its idempotency key, get). :func:`check_output` refuses an
output that could not be stored and read back with an :class:`ExecutorError` naming the field:
the run then fails like any executor failure (its input is retried), and nothing of it is
acknowledged. An output too large for the rows its boundary writes is refused the same way, by
:func:`~meerkat_runtime.session.run_end.check_receipt` (it needs the session's rows).
"""

from __future__ import annotations

from typing import Any

from meerkat_runtime.session.executor import CoreApplyOutput, ExecutorError, ReceiptDraft, RunResult
from meerkat_runtime.store.records import BoundaryKind
from meerkat_runtime.vocab import fields
from meerkat_runtime.vocab.errors import InvalidField

SUBJECT = "executor output"


def check_output(output: Any) -> None:
    """Raise ``ExecutorError`` (caused by ``InvalidField``) unless ``output`` is a well-formed
    ``CoreApplyOutput``."""
    try:
        _check(output)
    except InvalidField as bad:
        raise ExecutorError(str(bad)) from bad


def _check(output: Any) -> None:
    fields.instance(SUBJECT, "output", output, CoreApplyOutput, "a CoreApplyOutput")
    receipt = output.receipt
    fields.instance(SUBJECT, "receipt", receipt, ReceiptDraft, "a ReceiptDraft")
    fields.instance(SUBJECT, "receipt.contributing_input_ids", receipt.contributing_input_ids, tuple, "a tuple")
    for i, input_id in enumerate(receipt.contributing_input_ids):
        fields.text(SUBJECT, f"receipt.contributing_input_ids[{i}]", input_id)
    fields.member(SUBJECT, "receipt.boundary", receipt.boundary, BoundaryKind)
    fields.text(SUBJECT, "receipt.conversation_digest", receipt.conversation_digest, optional=True)
    fields.integer(SUBJECT, "receipt.message_count", receipt.message_count)
    if output.session_snapshot is not None:
        fields.instance(SUBJECT, "session_snapshot", output.session_snapshot, bytes, "bytes or None")
    result = output.run_result
    if result is not None:
        fields.instance(SUBJECT, "run_result", result, RunResult, "a RunResult or None")
        fields.text(SUBJECT, "run_result.text", result.text)
        fields.integer(SUBJECT, "run_result.turns", result.turns)
        fields.integer(SUBJECT, "run_result.tool_calls", result.tool_calls)
        fields.integer(SUBJECT, "run_result.tokens_used", result.tokens_used)
