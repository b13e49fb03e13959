"""Human answers as labeled data: every closed escalation becomes one training example.

The seed's feedback loop: "capture human responses as labeled data so the agent
improves at those exact edge cases". An expired escalation is exported too,
marked as such, because "nobody answered" is a fact about the case as well.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memory.tables import Escalation


def label(row: Escalation) -> dict[str, Any]:
    """One example: what the person saw (input), what they answered (label), and who and how fast."""
    latency = None if row.answered_at is None else round(row.answered_at - row.created_at, 3)
    return {
        "escalation_id": row.id,
        "run_id": row.run_id,
        "thread_id": row.thread_id,
        "tenant_id": row.tenant_id,
        "type": row.type,
        "trigger": row.trigger,
        "input": {"reason": row.reason, "question": row.question, "options": row.options, "context": row.context},
        "label": row.answer,
        "note": row.note,
        "status": row.status,
        "labeled_by": row.answered_by,
        "latency_s": latency,
        "created_at": row.created_at,
    }


def export_jsonl(rows: Sequence[Escalation]) -> list[str]:
    return [json.dumps(label(row), ensure_ascii=False, sort_keys=True, default=str) for row in rows]
