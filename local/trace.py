"""An execution's trace as a plain-text table for `make demo`; the trace itself is the library's
(threadrunner.execution_trace), which the API's GET /v1/runs/{run_id}/trace reads too."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from threadrunner.execution_trace import TraceStep, execution_trace

__all__ = ["TraceStep", "execution_trace", "format_trace"]  # the local stack's execution_trace() reads these


def format_trace(steps: list[TraceStep], *, width: int = 120) -> str:
    """A plain-text table, one row per state visit, times relative to the first state."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "state", "type", "status", "at", "took", "error"):
        table.add_column(column, justify="right" if column in ("#", "at", "took") else "left")
    origin = steps[0].started_at if steps else None
    for number, step in enumerate(steps, start=1):
        name = step.name if step.map_index is None else f"  {step.name} [item {step.map_index}]"
        status = step.status if step.attempts <= 1 else f"{step.status} ({step.attempts} attempts)"
        offset = (step.started_at - origin).total_seconds() if origin else 0.0
        took = "" if step.duration_ms is None else f"{step.duration_ms} ms"
        error = (
            "" if step.error is None else step.error if step.cause is None else f"{step.error}: {step.cause}"
        )
        table.add_row(str(number), name, step.type, status, f"{offset:.3f}s", took, error)
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(table)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in output.splitlines())
