"""Small static SVG charts (no JavaScript, no external files) with a text alternative, for the round report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe–Ito); series are also told apart by their legend order and the data table.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
BAR = 14
GAP = 6
LABEL_W = 230
PLOT_W = 420


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"


def hbar_chart(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "",
               max_value: float | None = None) -> Markup:
    """Horizontal grouped bars, one group per label; an accessible <figure> with title and description."""
    top = max([max_value or 0.0] + [float(v) for s in series for v in s.values]) or 1.0
    group_h = len(series) * BAR + GAP
    legend_h = 20 if len(series) > 1 else 0
    height = legend_h + len(labels) * group_h + 10
    width = LABEL_W + PLOT_W + 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">']
    if len(series) > 1:
        x = LABEL_W
        for k, s in enumerate(series):
            parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>'
                         f'<text x="{x + 16}" y="14" font-size="11">{escape(s.name)}</text>')
            x += 24 + 7 * len(s.name)
    for i, label in enumerate(labels):
        y0 = legend_h + i * group_h
        parts.append(f'<text x="{LABEL_W - 6}" y="{y0 + len(series) * BAR / 2 + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{escape(label)}</text>')
        for k, s in enumerate(series):
            v = float(s.values[i])
            w = PLOT_W * max(v, 0.0) / top
            y = y0 + k * BAR
            parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR - 2}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)} – {escape(s.name)}: '
                         f'{_fmt(v)}{escape(unit)}</title></rect>'
                         f'<text x="{LABEL_W + w + 4:.1f}" y="{y + BAR - 4}" font-size="10">{_fmt(v)}{escape(unit)}'
                         f'</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_color(share: float) -> str:
    """White (empty) to dark blue (full); above 100 % red, which must never appear for our assignment."""
    if share > 1.0 + 1e-9:
        return "#D55E00"
    level = int(round(255 - 200 * max(0.0, min(1.0, share))))
    return f"rgb({level},{level + (255 - level) // 3},255)"
