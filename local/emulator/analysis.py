"""What the emulator's code interpreter does with an uploaded CSV: a bar chart (a real PNG) and a summary
CSV, deterministic, so tests can check the bytes they download."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from dataclasses import dataclass

CHART_NAME = "chart.png"
SUMMARY_NAME = "summary.csv"
BAR_WIDTH = 8
CHART_HEIGHT = 64
_BAR = bytes((31, 119, 180))  # RGB
_BACKGROUND = bytes((255, 255, 255))


@dataclass(frozen=True)
class Analysis:
    chart: bytes  # PNG: one bar per row, of the last numeric column
    summary: bytes  # CSV: column, count, sum, mean for each numeric column
    logs: str


def analyse_csv(data: bytes) -> Analysis:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    numeric = [i for i in range(len(header)) if body and all(_number(row, i) is not None for row in body)]
    summary = io.StringIO()
    writer = csv.writer(summary, lineterminator="\n")
    writer.writerow(["column", "count", "sum", "mean"])
    for index in numeric:
        values = [_number(row, index) or 0.0 for row in body]
        total = sum(values)
        writer.writerow([header[index], len(values), _format(total), _format(total / len(values))])
    bars = [_number(row, numeric[-1]) or 0.0 for row in body] if numeric else []
    logs = f"{len(body)} rows, numeric columns: {', '.join(header[i] for i in numeric) or 'none'}"
    return Analysis(chart=bar_chart(bars), summary=summary.getvalue().encode(), logs=logs)


def bar_chart(values: list[float]) -> bytes:
    """A PNG bar chart: ``BAR_WIDTH`` pixels per value, bars scaled to the largest."""
    width = max(1, len(values)) * BAR_WIDTH
    top = max([value for value in values if value > 0], default=1.0)
    heights = [round(CHART_HEIGHT * max(value, 0.0) / top) for value in values]
    rows = []
    for y in range(CHART_HEIGHT):
        row = bytearray(b"\x00")  # filter type: none
        for x in range(width):
            bar = x // BAR_WIDTH
            filled = bar < len(heights) and CHART_HEIGHT - y <= heights[bar] and x % BAR_WIDTH != 0
            row += _BAR if filled else _BACKGROUND
        rows.append(bytes(row))
    return png(width, CHART_HEIGHT, b"".join(rows))


def png(width: int, height: int, scanlines: bytes) -> bytes:
    """A valid 8-bit RGB PNG from filtered scanlines."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _number(row: list[str], index: int) -> float | None:
    try:
        return float(row[index])
    except (IndexError, ValueError):
        return None


def _format(value: float) -> str:
    return f"{value:.2f}"
