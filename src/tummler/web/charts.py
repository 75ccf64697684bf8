"""An SVG chart kit for self-contained HTML pages: forest, bar, band, line and progress plots.

Every plot is an inline ``<svg>`` drawn from plain numbers (nothing fetched, no script), with a
stable ``id`` that tests and readers can find, and a ``<title>`` that says what it shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from tummler.app.reporting import GoalProgress

__all__ = [
    "ACCENT",
    "BAD",
    "GOOD",
    "MUTED",
    "band_plot",
    "bar_plot",
    "goals_plot",
    "interval_plot",
    "lines_plot",
    "number_text",
    "share_text",
]

ACCENT = "#2f6fde"
GOOD = "#1b8a5a"
BAD = "#c2410c"
MUTED = "#8a94a6"


def number_text(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; a dash when there is none or it is not finite."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def share_text(value: float | None, signed: bool = False) -> str:
    """``value`` as a percentage with one decimal; a dash when there is none or it is not finite."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return self.start + (value - self.low) / span * (self.end - self.start)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    if span <= 0 or not math.isfinite(span):
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _tick_label(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:g}%" if abs(value) >= 1e-12 else "0"
    return f"{value:g}"


def _y_grid(ticks: Sequence[float], ys: _Scale, left: int, right_x: int, percent: bool) -> str:
    """Horizontal grid lines across the plot, each with its value label left of the axis."""
    parts = []
    for tick in ticks:
        y = ys(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right_x}" y2="{y:.1f}" stroke="#edf0f5"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{escape(_tick_label(tick, percent))}</text>"
        )
    return "".join(parts)


def _svg_open(plot_id: str, width: int, height: int, title: str) -> str:
    return (
        f'<svg id="{escape(plot_id)}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(title)}</title>"
    )


def interval_plot(
    plot_id: str,
    title: str,
    rows: Sequence[tuple[str, float, float, float, bool]],
    *,
    percent: bool = True,
    width: int = 960,
) -> str:
    """A forest plot: one row per label with its estimate, interval and the zero line.

    ``rows`` are ``(label, estimate, low, high, significant)``; a significant row is drawn in
    green (or orange when below zero), the others in grey.
    """
    row_height, top, bottom, left, right = 34, 16, 36, 230, 30
    height = top + bottom + row_height * max(len(rows), 1)
    values = [v for _, e, lo, hi, _ in rows for v in (e, lo, hi) if math.isfinite(v)] + [0.0]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 0.01
    scale = _Scale(low - pad, high + pad, left, width - right)
    parts = [_svg_open(plot_id, width, height, title)]
    axis_y = height - bottom
    for tick in _nice_ticks(scale.low, scale.high):
        x = scale(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" stroke="#edf0f5"/>'
            f'<text x="{x:.1f}" y="{axis_y + 18}" font-size="12" text-anchor="middle">'
            f"{escape(_tick_label(tick, percent))}</text>"
        )
    zero = scale(0.0)
    parts.append(
        f'<line x1="{zero:.1f}" y1="{top - 4}" x2="{zero:.1f}" y2="{axis_y}" stroke="#5b6b83" '
        'stroke-dasharray="4 3"/>'
    )
    for i, (label, estimate, lo, hi, significant) in enumerate(rows):
        y = top + row_height * i + row_height / 2
        colour = (GOOD if estimate >= 0 else BAD) if significant else MUTED
        parts.append(
            f'<text x="{left - 12}" y="{y + 4:.1f}" font-size="13" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        if math.isfinite(lo) and math.isfinite(hi):
            parts.append(
                f'<line x1="{scale(lo):.1f}" y1="{y:.1f}" x2="{scale(hi):.1f}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-width="3" stroke-linecap="round"/>'
                f'<line x1="{scale(lo):.1f}" y1="{y - 7:.1f}" x2="{scale(lo):.1f}" y2="{y + 7:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
                f'<line x1="{scale(hi):.1f}" y1="{y - 7:.1f}" x2="{scale(hi):.1f}" y2="{y + 7:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(
            f'<circle cx="{scale(estimate):.1f}" cy="{y:.1f}" r="6" fill="{colour}" '
            'stroke="#fff" stroke-width="2"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_plot(
    plot_id: str,
    title: str,
    rows: Sequence[tuple[str, float, float, float]],
    *,
    percent: bool = True,
    width: int = 460,
    height: int = 260,
) -> str:
    """Vertical bars with interval whiskers: ``(label, value, low, high)`` per bar."""
    top, bottom, left, right = 16, 44, 52, 12
    values = [v for _, e, lo, hi in rows for v in (e, lo, hi) if math.isfinite(v)] + [0.0]
    high = max(values) * 1.1 or 1.0
    y_scale = _Scale(0.0, high, height - bottom, top)
    slot = (width - left - right) / max(len(rows), 1)
    parts = [_svg_open(plot_id, width, height, title)]
    parts.append(_y_grid(_nice_ticks(0.0, high, 4), y_scale, left, width - right, percent))
    for i, (label, value, lo, hi) in enumerate(rows):
        x = left + slot * i + slot * 0.2
        bar_width = slot * 0.6
        y = y_scale(max(value, 0.0))
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" '
            f'height="{max(y_scale(0.0) - y, 0):.1f}" rx="3" fill="{ACCENT}" fill-opacity="0.85"/>'
        )
        centre = x + bar_width / 2
        if math.isfinite(lo) and math.isfinite(hi):
            parts.append(
                f'<line x1="{centre:.1f}" y1="{y_scale(max(lo, 0.0)):.1f}" x2="{centre:.1f}" '
                f'y2="{y_scale(hi):.1f}" stroke="#18233a" stroke-width="1.5"/>'
                f'<line x1="{centre - 6:.1f}" y1="{y_scale(hi):.1f}" x2="{centre + 6:.1f}" '
                f'y2="{y_scale(hi):.1f}" stroke="#18233a" stroke-width="1.5"/>'
            )
        parts.append(
            f'<text x="{centre:.1f}" y="{height - bottom + 18}" font-size="12" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def band_plot(
    plot_id: str,
    title: str,
    x: Sequence[float],
    estimate: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    *,
    x_ticks: Sequence[tuple[float, str]],
    x_range: tuple[float, float],
    percent: bool = True,
    width: int = 960,
    height: int = 240,
) -> str:
    """A line with its interval as a shaded band; gaps where the estimate is missing."""
    top, bottom, left, right = 14, 34, 52, 16
    finite = [v for v in (*estimate, *low, *high) if math.isfinite(v)] + [0.0]
    y_high = max(finite) * 1.1 or 1.0
    y_low = min(min(finite), 0.0)
    xs = _Scale(x_range[0], x_range[1], left, width - right)
    ys = _Scale(y_low, y_high, height - bottom, top)
    parts = [_svg_open(plot_id, width, height, title)]
    parts.append(_y_grid(_nice_ticks(y_low, y_high, 4), ys, left, width - right, percent))
    for value, label in x_ticks:
        parts.append(
            f'<text x="{xs(value):.1f}" y="{height - bottom + 18}" font-size="11" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    segments: list[list[int]] = [[]]
    for i, e in enumerate(estimate):
        if math.isfinite(e):
            segments[-1].append(i)
        elif segments[-1]:
            segments.append([])
    for segment in segments:
        if not segment:
            continue
        lows = [low[i] if math.isfinite(low[i]) else estimate[i] for i in segment]
        highs = [high[i] if math.isfinite(high[i]) else estimate[i] for i in segment]
        upper = " ".join(f"{xs(x[i]):.1f},{ys(h):.1f}" for i, h in zip(segment, highs, strict=True))
        lower = " ".join(
            f"{xs(x[i]):.1f},{ys(lo):.1f}"
            for i, lo in reversed(list(zip(segment, lows, strict=True)))
        )
        parts.append(f'<polygon points="{upper} {lower}" fill="{ACCENT}" fill-opacity="0.15"/>')
        line = " ".join(f"{xs(x[i]):.1f},{ys(estimate[i]):.1f}" for i in segment)
        if len(segment) == 1:
            # A lone cell (send slots a few hours apart): a dot with its interval as a whisker.
            i = segment[0]
            parts.append(
                f'<line x1="{xs(x[i]):.1f}" y1="{ys(lows[0]):.1f}" x2="{xs(x[i]):.1f}" '
                f'y2="{ys(highs[0]):.1f}" stroke="{ACCENT}" stroke-opacity="0.45" '
                'stroke-width="3" stroke-linecap="round"/>'
                f'<circle cx="{xs(x[i]):.1f}" cy="{ys(estimate[i]):.1f}" r="3.5" fill="{ACCENT}"/>'
            )
        else:
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{ACCENT}" stroke-width="2"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


#: Line colours for :func:`lines_plot`, the first for the policy being shown off.
_SERIES_COLOURS = (ACCENT, MUTED, "#b7791f", "#7c3aed", GOOD, BAD)


def lines_plot(
    plot_id: str,
    title: str,
    x: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    x_label: str = "round",
    width: int = 960,
    height: int = 300,
) -> str:
    """Several lines over the same x, with a legend; the first line is drawn thickest."""
    top, bottom, left, right = 14, 40, 60, 180
    values = [v for _, ys in series for v in ys if math.isfinite(v)] or [0.0]
    y_low, y_high = min(min(values), 0.0), max(max(values), 0.0)
    if y_high == y_low:
        y_high = y_low + 1.0
    pad = (y_high - y_low) * 0.05
    xs = _Scale(min(x, default=0.0), max(x, default=1.0), left, width - right)
    ys = _Scale(y_low - pad if y_low < 0 else y_low, y_high + pad, height - bottom, top)
    parts = [_svg_open(plot_id, width, height, title)]
    parts.append(_y_grid(_nice_ticks(y_low, y_high, 4), ys, left, width - right, False))
    step = max(1, math.ceil(len(x) / 20))
    for i in range(0, len(x), step):
        parts.append(
            f'<text x="{xs(x[i]):.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="middle">{escape(f"{x[i]:g}")}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 6}" font-size="11" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    for number, (label, ys_values) in enumerate(series):
        colour = _SERIES_COLOURS[number % len(_SERIES_COLOURS)]
        points = " ".join(
            f"{xs(xi):.1f},{ys(v):.1f}"
            for xi, v in zip(x, ys_values, strict=True)
            if math.isfinite(v)
        )
        thick = 3 if number == 0 else 1.5
        dash = "" if number == 0 else ' stroke-dasharray="5 3"'
        if points:
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" '
                f'stroke-width="{thick}"{dash}><title>{escape(label)}</title></polyline>'
            )
        y = top + 14 + number * 18
        parts.append(
            f'<line x1="{width - right + 14}" y1="{y - 4}" x2="{width - right + 34}" '
            f'y2="{y - 4}" stroke="{colour}" stroke-width="{thick}"{dash}/>'
            f'<text x="{width - right + 40}" y="{y}" font-size="12">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def goals_plot(plot_id: str, goals: Sequence[GoalProgress], *, width: int = 960) -> str:
    """One progress bar per objective: the share of the target reached, capped at 150 %."""
    row_height, top, left, right = 36, 10, 230, 90
    height = top * 2 + row_height * max(len(goals), 1)
    bar = width - left - right
    parts = [_svg_open(plot_id, width, height, "progress against targets")]
    for i, goal in enumerate(goals):
        y = top + row_height * i
        progress = goal.progress if goal.progress is not None else 0.0
        shown = min(max(progress, 0.0), 1.5) / 1.5
        colour = GOOD if progress >= 1.0 else ACCENT if progress > 0 else MUTED
        target_x = left + bar / 1.5
        parts.append(
            f'<text x="{left - 12}" y="{y + 21}" font-size="13" text-anchor="end">'
            f"{escape(goal.objective)}</text>"
            f'<rect x="{left}" y="{y + 8}" width="{bar}" height="18" rx="9" fill="#edf0f5"/>'
            f'<rect x="{left}" y="{y + 8}" width="{bar * shown:.1f}" height="18" rx="9" '
            f'fill="{colour}"/>'
            f'<line x1="{target_x:.1f}" y1="{y + 4}" x2="{target_x:.1f}" y2="{y + 30}" '
            'stroke="#18233a" stroke-width="2"/>'
            f'<text x="{left + bar + 10}" y="{y + 21}" font-size="13">'
            f"{escape(share_text(goal.progress))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------- sections
