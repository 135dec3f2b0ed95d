"""The report's charts never cut a label, mark allocations that break rules, and give numbers for people."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from rematch_pipeline.reports.charts import (
    LABEL_MAX_W,
    LABEL_SIZE,
    SWATCH,
    Series,
    count,
    counted,
    hbar_chart,
    number,
    percent,
    seconds,
    stat,
    text_width,
    wrap_label,
    yes_no,
)
from tests.html_tree import Node, parse

LONG_NAME = ("Hohenstein-Ernstthal-Großrückerswalde-Wolkenstein-Marienberg-Pockau-Lengefeld am Erzgebirge, "
             "Ortsteil WWWMMM (Шумилово / 東京)")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def layout_problems(svg: Node) -> list[str]:
    """Every way a chart's text can be cut or overlap, measured as the chart measures it: labels that reach into
    the plot or past the left edge, text beyond the SVG's width, legend entries running into each other."""
    width = float(svg.attrs["width"] or 0)
    bars = [r for r in svg.iter("rect") if r.iter("title")]
    plot_x = min(float(r.attrs["x"] or 0) for r in bars)
    problems = []
    legend_rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for tx in svg.iter("text"):
        x, size, text = float(tx.attrs["x"] or 0), float(tx.attrs["font-size"] or 0), tx.text()
        w = max(text_width(line, size) for line in [ts.text() for ts in tx.iter("tspan")] or [text])
        left, right = (x - w, x) if tx.attrs.get("text-anchor") == "end" else (x, x + w)
        if tx.attrs.get("text-anchor") == "end" and (w > plot_x or right > plot_x):
            problems.append(f"label {text!r} ({w:.0f} px) is wider than the label column ({plot_x:.0f} px)")
        if left < 0 or right > width:
            problems.append(f"{text!r} runs outside the SVG: {left:.0f}..{right:.0f} of 0..{width:.0f}")
        if size == LABEL_SIZE and tx.attrs.get("text-anchor") != "end":
            legend_rows[tx.attrs["y"] or ""].append((x - SWATCH - 4, right))
    for row in legend_rows.values():
        row.sort()
        for (_, end), (start, _) in zip(row, row[1:], strict=False):
            if start < end:
                problems.append(f"legend entries overlap at x={start:.0f} (previous ends at {end:.0f})")
    return problems


def _svg(markup: str) -> Node:
    return parse(str(markup)).iter("svg")[0]


def test_numbers_are_formatted_for_people() -> None:
    assert count(1234567) == "1,234,567" and count(12.0) == "12" and count(None) == "–"
    assert number(104.576995) == "104.58" and number(0.00551741) == "0.01" and number(0.004) == "< 0.01"
    assert number(True) == "yes" and yes_no(False) == "no" and number(float("nan")) == "–"
    assert percent(0.875) == "87.5\u00a0%" and percent(1) == "100\u00a0%" and percent(0.12345) == "12.3\u00a0%"
    assert percent(0.0000001) == "<\u00a00.1\u00a0%" and percent(0.99999) == ">\u00a099.9\u00a0%"
    assert percent(None) == "–"
    assert seconds(12.34) == "12.3\u00a0s" and seconds(0.001) == "<\u00a00.1\u00a0s"
    assert seconds(0) == "<\u00a00.1\u00a0s"
    assert counted(1, "household") == "1 household" and counted(26, "capacity", "capacities") == "26 capacities"
    assert stat("solve_s", 3.14159) == "3.1\u00a0s" and stat("gap_to_lp", 0.00551741) == "0.6\u00a0%"
    assert stat("persons_proven_maximal", True) == "yes" and stat("lp_bound_persons", 104.576995) == "104.58"
    assert stat("balanced_fill", {"weight": 0.5, "points": 12.345678}) == "points 12.35 · weight 0.50"
    # A work limit in millionths is a count with its unit, not a share ("gap" in its name notwithstanding).
    assert stat("deterministic_work", {"persons_gap_ppm": 200}) == "persons gap ppm 200\u00a0ppm"


@pytest.mark.parametrize("text", ["Wuppertal", "WMWMWMWM", "Großrückerswalde", "Шумилово", "Ωμέγα", "東京都",
                                  "ع ربي", "0123456789 %", LONG_NAME])
def test_text_width_is_at_least_what_dejavu_sans_takes(text: str) -> None:
    ttlib = pytest.importorskip("fontTools.ttLib")  # comes with weasyprint; the measure itself needs no font file
    if not DEJAVU.is_file():
        pytest.skip("DejaVu Sans is not installed")
    font = ttlib.TTFont(str(DEJAVU))
    cmap, advances, em = font.getBestCmap(), font["hmtx"], font["head"].unitsPerEm
    # Characters DejaVu lacks fall back to another font; a CJK fallback takes one em.
    real = sum(advances[cmap[ord(ch)]][0] / em if ord(ch) in cmap else 1.0 for ch in text) * LABEL_SIZE
    assert text_width(text, LABEL_SIZE) >= real - 1e-6


def test_label_column_fits_the_longest_label_line() -> None:
    labels = ["Köln (05315000)", f"{LONG_NAME} (14521000)", "Ulm (08421000)"]
    svg = _svg(hbar_chart("fill", labels, [Series("persons fill", [0.5, 1.0, 0.25])], fmt=percent, max_value=1.0))
    plot_x = min(float(r.attrs["x"] or 0) for r in svg.iter("rect"))
    assert plot_x >= max(text_width(line, LABEL_SIZE) for lb in labels for line in wrap_label(lb))
    # Every label is there in full, in its lines.
    assert [" ".join(ts.text() for ts in tx.iter("tspan")) for tx in svg.iter("text") if tx.iter("tspan")] == labels
    assert layout_problems(svg) == []


def test_a_long_label_wraps_between_words_into_lines_no_wider_than_the_limit() -> None:
    reason = ("no offer left with enough units of at least 3 rooms where the household's medical services and "
              "a wheelchair-accessible unit are available")
    lines = wrap_label(reason)
    assert len(lines) > 1 and " ".join(lines) == reason
    assert all(text_width(line, LABEL_SIZE) <= LABEL_MAX_W for line in lines)
    assert wrap_label("Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherungsanstalt",
                      max_width=50) == ["Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherungsanstalt"]
    svg = _svg(hbar_chart("reasons", [reason, "other"], [Series("households", [3, 1])]))
    assert float(svg.attrs["width"] or 0) < text_width(reason, LABEL_SIZE) + 300
    assert layout_problems(svg) == []


def test_legend_entries_and_value_labels_never_overlap_or_run_outside() -> None:
    names = ["Re:Match (ours)", "greedy by score", "state quota (Königstein key) with a rather long name " * 2]
    svg = _svg(hbar_chart("ranks", ["rank 1", "rank 2"],
                          [Series(n, [10_000 * (k + 1), 3]) for k, n in enumerate(names)]))
    assert layout_problems(svg) == []
    svg = _svg(hbar_chart("placed", ["persons placed"], [Series("a", [412]), Series("b", [412], "breaks " + "x" * 80)],
                          fmt=lambda v: counted(v, "person")))
    assert layout_problems(svg) == []


def test_series_that_breaks_rules_is_hatched_outlined_and_says_so() -> None:
    svg = _svg(hbar_chart("placed", ["persons placed", "households placed"],
                          [Series("ours", [400, 48]), Series("quota", [412, 49], "breaks 26 capacities, 5 hard needs")],
                          fmt=[lambda v: counted(v, "person"), lambda v: counted(v, "household")]))
    marked = [r for r in svg.iter("rect") if r.has_class("violates") and r.iter("title")]
    assert [r.iter("title")[0].text().split(" – ")[1].split(":")[0] for r in marked] == ["quota", "quota"]
    assert all(r.attrs.get("stroke") == "#B00000" for r in marked)
    hatch = svg.iter("pattern")[0].attrs["id"]
    assert sum(r.attrs.get("fill") == f"url(#{hatch})" for r in svg.iter("rect")) == 3  # two bars and the legend
    values = [t.text() for t in svg.iter("text")]
    assert "412 persons · breaks 26 capacities, 5 hard needs" in values
    assert "400 persons" in values and "48 households" in values


def test_a_list_a_message_names_is_cut_short_the_same_way_everywhere() -> None:
    # Rule (charts.listed): the first few items, then how many more, never "..." in one message and "for example"
    # in another.
    from rematch_pipeline.reports.charts import listed

    assert listed(["01001000", "02000000"]) == "01001000, 02000000"
    assert listed([str(i) for i in range(8)]) == "0, 1, 2, 3, 4 and 3 more"
    assert listed(list(range(12)), 10) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more"
    assert listed([]) == ""
