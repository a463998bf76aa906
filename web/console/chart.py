"""The runs chart as SVG geometry (pure): a bar per run for its duration, a line for its
operations, each on its own scale. The template draws it; no script is involved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.run_series import RunPoint

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 56, 16, 28


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    dots: tuple[Dot, ...]
    line: str  # polyline points
    max_seconds: float
    max_operations: int
    first_label: str
    last_label: str
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM


def runs_chart(points: Sequence[RunPoint]) -> Chart | None:
    """The chart of finished cycles in `points` (oldest first); None when there are none."""
    runs = [p for p in points if p.is_cycle and p.duration_seconds is not None]
    if not runs:
        return None
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    step = plot_w / len(runs)
    max_seconds = max(max(p.duration_seconds or 0.0 for p in runs), 0.001)
    max_ops = max(max(p.operations for p in runs), 1)
    bars, dots = [], []
    for i, p in enumerate(runs):
        seconds = p.duration_seconds or 0.0
        h = plot_h * seconds / max_seconds
        x = LEFT + i * step
        label = f"run {p.id} ({p.status}): {seconds:.1f} s, {p.operations} operations"
        bars.append(Bar(round(x + step * 0.15, 1), round(TOP + plot_h - h, 1), round(step * 0.7, 1), round(h, 1), label))
        dots.append(Dot(round(x + step / 2, 1), round(TOP + plot_h - plot_h * p.operations / max_ops, 1), label))
    line = " ".join(f"{d.x},{d.y}" for d in dots)
    return Chart(WIDTH, HEIGHT, tuple(bars), tuple(dots), line, max_seconds, max_ops,
                 f"run {runs[0].id}", f"run {runs[-1].id}")
