"""Numbers for people and small static SVG charts (no JavaScript, no external files) for the round report."""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe–Ito); series are also told apart by their legend order and the data table.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
# Bars of an allocation that breaks a rule get this outline and a hatch, so colour is not the only sign.
VIOLATION = "#B00000"
FONT = "'DejaVu Sans', Arial, sans-serif"
LABEL_SIZE = 11
VALUE_SIZE = 10
BAR = 14
GAP = 6
PAD = 6
PLOT_W = 420
LABEL_MAX_W = 300.0  # wider labels wrap, so a long unmatched reason does not push the bars off the page
LINE_H = LABEL_SIZE + 3
SWATCH = 12
NONE = "–"

# --- Numbers for people: the report's one formatting home, used by the charts and (as filters) by the template.


def yes_no(value: Any) -> str:
    return NONE if value is None else "yes" if value else "no"


def fraction(value: Any) -> str:
    """A bound that is not whole never reads as whole: 104.996 as 104.996, not 105.00."""
    for decimals in range(2, 7):
        text = number(value, decimals)
        if not text.endswith("." + "0" * decimals):
            break
    return text


def number(value: Any, decimals: int = 2) -> str:
    """Whole numbers with thousands separators; others with `decimals` decimals (scores, LP bounds, prices)."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return yes_no(value)
    x = float(value)
    if not math.isfinite(x):
        return NONE
    if x.is_integer():
        return f"{int(x):,}"
    text = f"{x:,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        # A value that is not zero must not read as zero.
        return f"< {10 ** -decimals:.{decimals}f}" if x > 0 else f"> -{10 ** -decimals:.{decimals}f}"
    return text


def signed(value: Any) -> str:
    """A change with its sign: `+5`, `−5` (a minus sign, not a hyphen), `0`."""
    if value is None:
        return NONE
    return ("+" if value > 0 else "\u2212" if value < 0 else "") + number(abs(value))


def count(value: Any) -> str:
    """Persons, households, rows: whole numbers with thousands separators (a fractional count keeps 2 decimals)."""
    return number(value)


UNIT_SPACE = "\u00a0"  # no-break space: a line never breaks between a number and its unit


def with_unit(number_text: str, unit: str) -> str:
    """`87.5 %`, `< 0.1 s`: the number, its comparison sign and its unit held together on one line."""
    return f"{number_text} {unit}".replace(" ", UNIT_SPACE)


def percent(share: Any) -> str:
    """A share (0.875) as per cent with at most one decimal: `87.5 %`, `100 %` (no-break space)."""
    if share is None:
        return NONE
    x = 100 * float(share) + 0.0  # + 0.0 turns a negative zero into zero, which would read "-0 %"
    if not math.isfinite(x):
        return NONE
    text = f"{x:,.1f}"
    # Near the ends a rounded share would claim none or all.
    if x != 0 and float(text.replace(",", "")) == 0:
        return with_unit("< 0.1", "%")
    if x < 100 and float(text.replace(",", "")) == 100:
        return with_unit("> 99.9", "%")
    return with_unit(text.removesuffix(".0"), "%")


def seconds(value: Any) -> str:
    if value is None:
        return NONE
    x = float(value)
    # Stored times are rounded to milliseconds, so a stored 0.0 was also a moment, not nothing.
    return with_unit("< 0.1", "s") if 0 <= x < 0.05 else with_unit(f"{x:,.1f}", "s")


def counted(n: Any, noun: str, plural: str | None = None) -> str:
    """`1 household`, `412 persons`."""
    return f"{count(n)} {noun if n == 1 else plural or noun + 's'}"


def listed(items: Sequence[Any], limit: int = 5) -> str:
    """A list a message names, cut short: `a, b, c and 12 more` (every message cuts the same way)."""
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def stat(key: str, value: Any) -> str:
    """A solver statistic stored with the round, formatted by what its name says it is."""
    if isinstance(value, Mapping):
        return " · ".join(f"{k.replace('_', ' ')} {stat(k, v)}" for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        return ", ".join(stat(key, v) for v in value)
    if value is None or isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, str):
        return value
    if key.endswith("_s"):
        return seconds(value)
    if key.endswith("_ppm"):  # persons_gap_ppm: a count of millionths, not a share
        return f"{number(value)}\u00a0ppm"
    if "gap" in key.split("_"):  # gap_to_lp, quality_gap: relative to their bound
        return percent(value)
    return number(value)


# --- Text width: per-character advance widths in em, the larger of DejaVu Sans and Arial, rounded up.
_EM_GROUPS = (
    (0.28, "'ijl"), (0.30, "I"), (0.32, " \u00a0,.·’‘"), (0.34, ":;/\\|"), (0.37, "-f"), (0.40, "()[]t"), (0.42, "r!"),
    (0.46, '"'), (0.50, "*J`–§°"), (0.53, "sz“”"), (0.56, "c?L_"), (0.58, "k"), (0.60, "vxy"), (0.62, "FTaeo"),
    (0.64, "bdghnpqu0123456789$ß€{}"), (0.67, "EKPSY"), (0.69, "ABVXZ"), (0.73, "CR"), (0.74, "U"), (0.76, "NH"),
    (0.78, "DG&"), (0.79, "OQ"), (0.82, "w"), (0.84, "#+<=>^~×−"), (0.87, "M"), (0.96, "%"), (0.98, "m"), (0.99, "W"),
    (1.00, "—…"), (1.02, "@"),
)
_EM = {ch: w for w, chars in _EM_GROUPS for ch in chars}
# Letters of other scripts (Cyrillic Ш is 1.09 em) and anything unknown: a generous full em and a bit.
_EM_OTHER = 1.1


def _char_em(ch: str) -> float:
    if ch in _EM:
        return _EM[ch]
    if unicodedata.category(ch).startswith("M"):
        return 0.0  # a combining mark sits on the letter before it
    base = unicodedata.normalize("NFD", ch)[0]  # Ö, é, ł … are as wide as their base letter
    if base in _EM:
        return _EM[base]
    return _EM_OTHER


def text_width(text: str, font_size: float) -> float:
    """Width in px of `text` set in the report's font at `font_size` px; at least what DejaVu Sans takes."""
    return font_size * sum(_char_em(ch) for ch in text)


# --- Charts.


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    # What the allocation breaks (e.g. "breaks 26 capacities, 5 hard needs"); its bars are then hatched and outlined.
    warning: str = ""


Fmt = Callable[[Any], str]


def _pattern_id(title: str) -> str:
    # Inline SVGs share the page's ids; a hash of the title keeps the id unique per chart and the bytes stable.
    return "hatch-" + hashlib.sha256(title.encode()).hexdigest()[:10]


def hbar_chart(title: str, labels: Sequence[str], series: Sequence[Series], fmt: Fmt | Sequence[Fmt] = count,
               max_value: float | None = None, warn_in_values: bool = True) -> Markup:
    """Horizontal grouped bars, one group per label, sized so no label is cut: the label column fits the longest
    label, legend entries sit by their measured width, value labels stay inside the SVG. `fmt` formats values,
    one for the chart or one per label."""
    fmts = [fmt] * len(labels) if callable(fmt) else list(fmt)
    top = max([max_value or 0.0] + [float(v) for s in series for v in s.values]) or 1.0
    lines = [wrap_label(lb) for lb in labels]
    label_w = math.ceil(max([text_width(ln, LABEL_SIZE) for ls in lines for ln in ls] + [0.0])) + 2 * PAD
    bars: list[tuple[int, int, float, float, str]] = []  # label and series index, value, bar width, value text
    for i in range(len(labels)):
        for k, s in enumerate(series):
            v = float(s.values[i])
            text = fmts[i](v) + (f" · {s.warning}" if s.warning and warn_in_values else "")
            bars.append((i, k, v, PLOT_W * max(v, 0.0) / top, text))
    right = max([PLOT_W] + [w + 4 + text_width(text, VALUE_SIZE) for *_, w, text in bars])
    width = label_w + math.ceil(right) + PAD
    legend = [(k, s, s.name + (f" — {s.warning}" if s.warning else "")) for k, s in enumerate(series)]
    entry_w = [SWATCH + 4 + text_width(text, LABEL_SIZE) + 2 * PAD for *_, text in legend]
    if len(series) > 1:
        width = max(width, label_w + math.ceil(max(entry_w)))
    # Legend entries flow left to right from the plot's left edge and wrap where the next would not fit.
    placed: list[tuple[float, int, int, Series, str]] = []
    x, row = float(label_w), 0
    for (k, s, text), w in zip(legend, entry_w, strict=True):
        if x > label_w and x + w > width:
            x, row = label_w, row + 1
        placed.append((x, 4 + 18 * row, k, s, text))
        x += w
    legend_h = 18 * (row + 1) + 4 if len(series) > 1 else 0
    # A group is as tall as its bars or its label's lines, whichever needs more.
    inner_h = [max(len(series) * BAR, len(ls) * LINE_H) for ls in lines]
    tops = [legend_h + sum(inner_h[:i]) + i * GAP for i in range(len(labels))]
    height = legend_h + sum(inner_h) + len(labels) * GAP + 10
    hatch = _pattern_id(title)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="{FONT}" aria-label="{escape(title)}">']
    if any(s.warning for s in series):
        parts.append(f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" '
                     f'patternTransform="rotate(45)"><rect width="3" height="6" fill="#ffffff" fill-opacity="0.6"/>'
                     f'</pattern></defs>')

    def red(s: Series) -> str:
        return f' fill="{VIOLATION}"' if s.warning else ""

    def bar(x: float, y: float, w: float, h: float, k: int, s: Series, inner: str = "") -> str:
        colour = PALETTE[k % len(PALETTE)]
        if not s.warning:
            return f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" fill="{colour}">{inner}</rect>'
        return (f'<rect class="violates" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" fill="{colour}" '
                f'stroke="{VIOLATION}" stroke-width="2">{inner}</rect>'
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" fill="url(#{hatch})" '
                f'pointer-events="none"/>')

    if len(series) > 1:
        for x, y, k, s, text in placed:
            parts.append(bar(x, y, SWATCH, SWATCH, k, s) +
                         f'<text x="{x + SWATCH + 4:.1f}" y="{y + 10}" font-size="{LABEL_SIZE}"{red(s)}>'
                         f'{escape(text)}</text>')
    for i, ls in enumerate(lines):
        first = tops[i] + inner_h[i] / 2 - (len(ls) - 1) * LINE_H / 2 + 4
        spans = "".join(f'<tspan x="{label_w - PAD}" dy="{0 if j == 0 else LINE_H}">{escape(ln)}</tspan>'
                        for j, ln in enumerate(ls))
        parts.append(f'<text x="{label_w - PAD}" y="{first:.1f}" font-size="{LABEL_SIZE}" text-anchor="end">'
                     f'{spans}</text>')
    for i, k, _, w, text in bars:
        s = series[k]
        y = tops[i] + k * BAR
        tip = f"<title>{escape(labels[i])} – {escape(s.name)}: {escape(text)}</title>"
        parts.append(bar(label_w, y, w, BAR - 2, k, s, tip) +
                     f'<text x="{label_w + w + 4:.1f}" y="{y + BAR - 4}" font-size="{VALUE_SIZE}"{red(s)}>'
                     f'{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def wrap_label(label: str, max_width: float = LABEL_MAX_W) -> list[str]:
    """A label in lines no wider than `max_width` at the label size, broken between words only (a longer word
    keeps its own line whole)."""
    lines: list[str] = []
    for word in label.split():
        if lines and text_width(f"{lines[-1]} {word}", LABEL_SIZE) <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def heat_color(share: float) -> str:
    """White (empty) to dark blue (full); above 100 % red, which must never appear for our assignment."""
    if share > 1.0 + 1e-9:
        return "#D55E00"
    level = int(round(255 - 200 * max(0.0, min(1.0, share))))
    return f"rgb({level},{level + (255 - level) // 3},255)"
