"""Charts as inline SVG, drawn on the server: stacked bars per hour with a legend.

No chart library and no JavaScript: the wallboard's server-sent updates carry the SVG, so a
chart changes with the numbers. Pure: lists of numbers in, SVG text out (every label escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f5fbf", "#1b7f3b", "#b36b00", "#b3261e", "#6a3fb5", "#2a8a8a", "#8a6d3b", "#5b6575")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


def nice_top(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value``."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 230,
) -> str:
    """One bar per label, stacked by series; an empty chart says so instead of drawing nothing."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)} labels")
    left, right, top_pad, bottom = 40, 10, 28, 48
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = nice_top(max(totals, default=0) or 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}"'
        f' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" style="font-size:13px;fill:#1d2430">{escape(title)}</text>',
    ]
    for tick in (0, top // 2, top) if top >= 2 else (0, top):
        y = top_pad + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ee"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    if not labels or not any(totals):
        parts.append(
            f'<text x="{left + plot_w / 2:.0f}" y="{top_pad + plot_h / 2:.0f}" text-anchor="middle">'
            "no attempts yet</text>"
        )
    slot = plot_w / max(len(labels), 1)
    bar_w = max(2.0, slot * 0.7)
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y = top_pad + plot_h
        for n, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}"'
                f' fill="{PALETTE[n % len(PALETTE)]}">'
                f"<title>{escape(label)} {escape(s.name)}: {value}</title></rect>"
            )
        if len(labels) <= 12 or i % max(1, len(labels) // 12) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top_pad + plot_h + 14}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    legend_x = left
    for n, s in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        parts.append(f'<rect x="{legend_x}" y="{height - 16}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{height - 7}">{escape(s.name)}</text>')
        legend_x += 22 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)
