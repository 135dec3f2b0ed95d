"""The round report shows charts and tables of the stored round, links the Data Docs and the audit export."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from rematch_pipeline.config import Settings, load_policy
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.domain import Unmatched, UnmatchedReason
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.matching.reasons import words
from rematch_pipeline.reports.charts import LABEL_SIZE, text_width, wrap_label
from rematch_pipeline.reports.round_report import STAT_LABELS, reason_group, write_round_report
from rematch_pipeline.rounds import offer_round, run_round
from tests import exports as x
from tests.html_tree import Node, parse
from tests.test_report_charts import LONG_NAME, layout_problems

ROUND_DATE = date(2026, 11, 23)
EVIL_NAME = '<script>alert(1)</script>=HYPERLINK("http://x")'


def _round(settings: Settings, tmp_path: Path, cologne: str = "Köln", offer: bool = True) -> str:
    policy = load_policy()
    offers = [x.offer("OF-1", ags="09162000", municipality_name=EVIL_NAME, state="BY", places_persons="8",
                      units_1_room="3", units_2_rooms="0", units_3_rooms="0", units_4plus_rooms="0",
                      medical_services=""),
              x.offer("OF-2", ags="05315000", municipality_name=cologne, state="NW", medical_services="")]
    households = [x.household(f"H{i}", medical_needs="dialysis" if i == 5 else "none") for i in range(1, 7)]
    members = {f"uuid-H{i}": x.family("head") for i in range(1, 7)}
    for name, data in (("cap.csv", x.capacity_csv(offers)), ("hh.xlsx", x.kobo_xlsx(households, members))):
        path = tmp_path / name
        path.write_bytes(data)
        assert ingest_file(path, settings).status == "ingested"
    summary = run_round(settings, policy, ROUND_DATE)
    if offer:
        offer_round(settings, summary.round_id)
    return summary.round_id


def _section(doc: Node, ident: str) -> Node:
    return doc.by_id(ident)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _report(settings: Settings, round_id: str) -> Node:
    return parse(write_round_report(settings, round_id).read_text(encoding="utf-8"))


def _rows(table: Node) -> dict[str, list[Node]]:
    return {r.iter("th")[0].text(): r.iter("td") for r in table.iter("tr") if r.iter("td")}


def test_report_has_a_chart_and_a_table_for_every_view(settings: Settings, tmp_path: Path) -> None:
    round_id = _round(settings, tmp_path)
    path = write_round_report(settings, round_id)
    doc = parse(path.read_text(encoding="utf-8"))
    assert [h.text() for h in doc.iter("h1")] == [f"Round report {round_id}"]
    for ident in ("baselines", "ranks", "fill", "unmatched"):
        section = _section(doc, ident)
        charts = section.iter("svg")
        assert charts and all(c.attrs.get("role") == "img" and c.attrs.get("aria-label") for c in charts), ident
        assert section.iter("table"), f"{ident}: the chart's numbers are also given as a table"
    # Ours and both baselines side by side; ours never breaks a hard need or a capacity.
    rows = {r.iter("th")[0].text(): [c.text() for c in r.iter("td")] for r in _section(doc, "baselines").iter("tr")
            if r.iter("td")}
    assert set(rows) == {"Re:Match (ours)", "greedy by score", "state quota (Königstein key)"}
    assert rows["Re:Match (ours)"][4:6] == ["0", "0"]
    # Balance across municipalities for every method: persons placed beyond their offer's proportional share.
    header = [c.text() for c in _section(doc, "baselines").iter("th") if c.attrs.get("scope") == "col"]
    assert header[-1] == "persons beyond share*"  # the mark of its note under the table
    assert all(float(cells[-1]) >= 0 for cells in rows.values())


@pytest.mark.full
def test_fill_heatmap_counts_what_the_round_assigned_per_dimension(settings: Settings, tmp_path: Path) -> None:
    round_id = _round(settings, tmp_path)
    doc = parse(write_round_report(settings, round_id).read_text(encoding="utf-8"))
    with get_engine(settings.database_url).connect() as conn:
        placed = dict(conn.execute(select(t.assignments.c.ags, t.assignments.c.persons)).all())
        per_ags: dict[str, int] = {}
        for ags, persons in conn.execute(select(t.assignments.c.ags, t.assignments.c.persons)):
            per_ags[ags] = per_ags.get(ags, 0) + persons
    assert placed
    heat = [tbl for tbl in _section(doc, "fill").iter("table") if tbl.has_class("heatmap")][0]
    seen = {}
    for row in heat.iter("tbody")[0].iter("tr"):
        ags = row.iter("th")[0].text().rsplit("(", 1)[1].rstrip(")")
        cells = {c.attrs["data-dimension"]: c.text() for c in row.iter("td")}
        used, cap = (int(v) for v in cells["places_persons"].split(" / "))
        assert used <= cap
        seen[ags] = used
        # One-room units bind in München: at most three households of one person each.
        if ags == "09162000":
            assert int(cells["rooms_1"].split(" / ")[0]) <= 3
    assert seen == {"09162000": per_ags.get("09162000", 0), "05315000": per_ags.get("05315000", 0)}


@pytest.mark.full
def test_unmatched_reasons_are_grouped_in_words(settings: Settings, tmp_path: Path) -> None:
    round_id = _round(settings, tmp_path)
    doc = parse(write_round_report(settings, round_id).read_text(encoding="utf-8"))
    reasons = [r.iter("th")[0].text() for r in _section(doc, "unmatched").iter("tr") if r.iter("td")]
    # H5 needs dialysis, which neither municipality offers.
    assert any(r.startswith("no eligible municipality — ") for r in reasons)
    why = UnmatchedReason("capacity", 3, (("kita_u3", 3), ("places_persons", 2)))
    assert words(why) == ("capacity exhausted at all 3 eligible municipalities: Kita U3 places (3), "
                          "places for persons (2)")
    assert reason_group(Unmatched("R", "H", 2, words(why), why)) == "capacity exhausted — Kita U3 places"
    # "Exhausted" beside free places in the fill table: the report says what it means.
    (means,) = [p.text() for p in _section(doc, "unmatched").iter("p") if p.has_class("exhausted-means")]
    assert "some places may still be free" in means and "not enough for this household" in means


@pytest.mark.full
def test_report_links_data_docs_and_audit_files_that_exist(settings: Settings, tmp_path: Path) -> None:
    round_id = _round(settings, tmp_path)
    path = write_round_report(settings, round_id)
    doc = parse(path.read_text(encoding="utf-8"))
    links = [a.attrs["href"] for a in _section(doc, "validation").iter("a")]
    assert len(links) >= 3  # the index and one report per validated table
    for href in links:
        assert href and not href.startswith(("/", "http")), "links are relative, so the folder can be handed over"
        assert (path.parent / href).is_file(), href
    audit = [a.attrs["href"] for a in _section(doc, "audit").iter("a")]
    assert all((path.parent / href).exists() for href in audit if href)
    assert (path.parent / f"audit/{round_id}/events.csv").is_file()


@pytest.mark.full
def test_municipality_names_never_become_markup_in_the_report(settings: Settings, tmp_path: Path) -> None:
    round_id = _round(settings, tmp_path)
    html = write_round_report(settings, round_id).read_text(encoding="utf-8")
    doc = parse(html)
    assert not doc.iter("script")
    assert any(EVIL_NAME in th.text() for th in doc.iter("th"))


@pytest.mark.full
def test_same_round_gives_the_same_report(settings: Settings, tmp_path: Path) -> None:
    round_id = _round(settings, tmp_path)
    first = write_round_report(settings, round_id).read_bytes()
    assert write_round_report(settings, round_id).read_bytes() == first


# A figure straight from Python: a float with its binary tail, or a bool or None as Python spells it.
RAW = re.compile(r"\d\.\d{3,}|\b(?:True|False|None|nan|inf)\b")


def test_report_shows_numbers_for_people_in_every_cell_and_chart(settings: Settings, tmp_path: Path) -> None:
    doc = _report(settings, _round(settings, tmp_path, cologne=LONG_NAME))
    cells = [c.text() for tbl in doc.iter("table") for c in tbl.iter("td") + tbl.iter("th")]
    texts = [tx.text() for svg in doc.iter("svg") for tx in svg.iter("text") + svg.iter("title")]
    assert cells and texts
    raw = [c for c in cells + texts if RAW.search(c)]
    assert raw == [], "unformatted numbers or booleans"
    figures = {th.text(): td.text() for th, td in (r.iter("th") + r.iter("td") for r in
                                                    _section(doc, "figures").iter("table")[0].iter("tr"))}
    assert figures[STAT_LABELS["persons_proven_maximal"]] == "no" or figures[
        STAT_LABELS["persons_proven_maximal"]].startswith("yes: ")
    assert figures[STAT_LABELS["gap_to_lp"]].endswith("\u00a0%")
    # Each row is headed by the statistic in words, its name in round.json in a column of its own.
    stats_table = _section(doc, "solver").iter("table")[1]
    solver = {row[-1].text(): (heading, row) for heading, row in _rows(stats_table).items()}
    heading, row = solver["solve_s"]
    assert heading == "time in the solver's phases" and row[0].text().endswith("\u00a0s")
    assert all(td.text().endswith("\u00a0s") for tr in _section(doc, "solver").iter("table")[0].iter("tr")
               for td in tr.iter("td")[:1])
    fill = [tx.text() for tx in _section(doc, "fill").iter("svg")[0].iter("text")
            if tx.attrs.get("text-anchor") != "end"]
    assert fill and all(re.fullmatch(r"(?:<\s)?\d+(?:\.\d)?\u00a0%", v) for v in fill), fill


def test_baseline_that_breaks_rules_is_marked_on_the_chart(settings: Settings, tmp_path: Path) -> None:
    section = _section(_report(settings, _round(settings, tmp_path)), "baselines")
    rows = _rows(section.iter("table")[0])
    # H5 needs dialysis; the state quota does not look at needs and places it anyway.
    breaking = {label for label, cells in rows.items() if _int(cells[4].text()) or _int(cells[5].text())}
    assert breaking == {"state quota (Königstein key)"}
    svg = section.iter("svg")[0]
    marked = {r.iter("title")[0].text().split(" – ")[1].rsplit(":", 1)[0] for r in svg.iter("rect")
              if r.has_class("violates") and r.iter("title")}
    assert marked == breaking
    values = [tx.text() for tx in svg.iter("text")]
    persons = _int(rows["state quota (Königstein key)"][1].text())
    assert f"{persons} persons · breaks 1 hard need" in values
    assert "Only allocations without violations are feasible" in section.iter("figcaption")[0].text()


def test_rank_distribution_rows_sum_to_households_placed(settings: Settings, tmp_path: Path) -> None:
    doc = _report(settings, _round(settings, tmp_path))
    section = _section(doc, "ranks")
    baselines = _rows(_section(doc, "baselines").iter("table")[0])
    placed = {label: _int(cells[0].text()) for label, cells in baselines.items()}
    rows = _rows(section.iter("table")[0])
    assert set(rows) == set(placed)
    for label, cells in rows.items():
        buckets = [_int(c.text()) for c in cells if "data-total" not in c.attrs]
        total = [_int(c.text()) for c in cells if "data-total" in c.attrs]
        assert total == [placed[label]] and sum(buckets) == placed[label], label
    # The household placed where its need is not met has no rank; the report says so instead of dropping it.
    notes = [p.text() for p in section.iter("p") if p.has_class("note")]
    assert any(n.startswith("state quota (Königstein key): 1 of ") and "hard need" in n for n in notes), notes


@pytest.mark.full
def test_offer_and_unmatched_tables_add_up_or_say_why(settings: Settings, tmp_path: Path) -> None:
    round_id = _round(settings, tmp_path, offer=False)
    doc = _report(settings, round_id)
    section = _section(doc, "figures")
    offers = section.iter("table")[1]
    statuses = [th.text() for th in offers.iter("th")]
    cells = [_int(td.text()) for td in offers.iter("td")]
    assert statuses[-1] == "total" and sum(cells[:-1]) == cells[-1] == 0
    placed = _int(_rows(_section(doc, "baselines").iter("table")[0])["Re:Match (ours)"][0].text())
    notes = [p.text() for p in section.iter("p") if p.has_class("note") and not p.has_class("answers-as-of")]
    assert notes == [f"No offers yet: the round is solved. `rematch round offer {round_id}` makes one offer to "
                     f"each of the {placed} households placed."]
    reasons = _section(doc, "unmatched").iter("table")[0]
    body = [[_int(td.text()) for td in tr.iter("td")] for tr in reasons.iter("tbody")[0].iter("tr")]
    total = [_int(td.text()) for td in reasons.iter("tfoot")[0].iter("td")]
    assert total == [sum(col) for col in zip(*body, strict=True)]


@pytest.mark.full
def test_chart_label_column_fits_a_very_long_municipality_name(settings: Settings, tmp_path: Path) -> None:
    doc = _report(settings, _round(settings, tmp_path, cologne=LONG_NAME))
    svg = _section(doc, "fill").iter("svg")[0]
    plot_x = min(float(r.attrs["x"] or 0) for r in svg.iter("rect"))
    lines = wrap_label(f"{LONG_NAME} (05315000)")
    assert len(lines) > 1 and plot_x >= max(text_width(line, LABEL_SIZE) for line in lines)
    assert any(" ".join(ts.text() for ts in tx.iter("tspan")) == f"{LONG_NAME} (05315000)" for tx in svg.iter("text"))
    for svg in doc.iter("svg"):
        assert layout_problems(svg) == [], svg.attrs["aria-label"]


def test_the_headline_formats_the_solvers_numbers_for_people() -> None:
    from rematch_pipeline.reports.round_report import _headline

    stats = {"persons_placed": 25323, "persons_in_pool": 25900, "status": "work_limit",
             "message": "25323 of 25900 persons placed (9725 households), solver work_limit"}
    assert _headline(stats, 9725) == ("25,323 of 25,900 persons placed by the round (9,725 households), solver "
                                      "work_limit")
    assert _headline({"message": "no solve: infeasible"}, 0) == "no solve: infeasible"  # a failed round says why


def test_an_offer_with_no_places_left_shows_words_not_a_share() -> None:
    from rematch_pipeline.reports.round_report import _fill_label

    assert _fill_label({"no_places_left": True, "persons_used": 3})(2.0) == "3 persons placed, no places left"
    assert _fill_label({"no_places_left": True, "persons_used": 0})(0.0) == "no places left"
    assert _fill_label({"no_places_left": False, "persons_used": 3})(0.75) == "75\u00a0%"


def test_report_never_breaks_a_line_between_a_number_and_its_unit(settings: Settings, tmp_path: Path) -> None:
    html = write_round_report(settings, _round(settings, tmp_path)).read_text(encoding="utf-8")
    assert re.search("\\d\u00a0%", html) and re.search("\\d\u00a0s\\b", html)
    breakable = re.findall(r"\d[ \t\n]+(?:%|s\b)", html)
    assert breakable == [], "a breaking space between a number and its unit"


def test_printed_report_keeps_every_chart_and_table_on_the_page(settings: Settings, tmp_path: Path) -> None:
    from weasyprint import HTML

    html = write_round_report(settings, _round(settings, tmp_path, cologne=LONG_NAME)).read_text(encoding="utf-8")

    def boxes(box: object) -> list[object]:
        return [box] + [b for child in getattr(box, "children", None) or [] for b in boxes(child)]

    over = []
    for number, page in enumerate(HTML(string=html).render().pages, start=1):
        right = page._page_box.content_box_x() + page._page_box.width
        over += [(number, type(b).__name__) for b in boxes(page._page_box.children[0])
                 if isinstance(getattr(b, "width", None), int | float) and b.position_x + b.width > right + 0.5]
    assert over == [], "charts or tables running off the printed page"


def test_every_phase_of_a_round_beyond_the_pyomo_size_is_named_in_words() -> None:
    from rematch_pipeline.config import load_policy, policy_with
    from rematch_pipeline.matching.engine import match
    from rematch_pipeline.reports.round_report import PHASE_LABELS, TERMINATION_WORDS
    from tests.factories import ROUND_DATE
    from tests.test_matching import _scenario

    hs, os_ = _scenario(24)
    result = match(hs, os_, ROUND_DATE, policy_with(load_policy(), pyomo_max_pairs=0), "R")
    phases = {p["phase"] for p in result.stats["phases"]}
    assert "max_quality_lns" in phases and phases <= set(PHASE_LABELS), sorted(phases - set(PHASE_LABELS))
    # The ways these phases end (the small round of the report's other tests ends only `optimal`) have words too.
    ended = {p["termination"] for p in result.stats["phases"]}
    assert "heuristic" in ended and all(TERMINATION_WORDS.get(w) for w in ended), ended


def test_every_way_a_phase_of_the_round_ended_is_explained_under_the_phases(settings: Settings,
                                                                            tmp_path: Path) -> None:
    from rematch_pipeline.reports.round_report import TERMINATION_WORDS
    from rematch_pipeline.repository import reading

    round_id = _round(settings, tmp_path)
    with reading(settings) as uow:
        rnd = uow.rounds.get(round_id)
    assert rnd is not None
    ended = {p["termination"] for p in (rnd.solver_stats or {})["phases"]}
    note = _report(settings, round_id).by_id("terminations").text()
    assert ended and all(f"{w}: {TERMINATION_WORDS[w]}" in note for w in ended), note


def test_every_work_limit_of_the_search_is_named_in_words_in_a_table_of_its_own(settings: Settings,
                                                                                tmp_path: Path) -> None:
    from rematch_pipeline.matching.solve import deterministic_work
    from rematch_pipeline.reports.round_report import WORK_LABELS

    assert set(deterministic_work()) <= set(WORK_LABELS), sorted(set(deterministic_work()) - set(WORK_LABELS))
    rows = _rows(_report(settings, _round(settings, tmp_path)).by_id("work-limits"))
    assert set(rows) == {WORK_LABELS[k] for k in deterministic_work()}
    assert rows[WORK_LABELS["persons_gap_ppm"]][0].text() == "0\u00a0ppm"


def test_every_statistic_and_phase_of_a_round_is_named_in_words(settings: Settings, tmp_path: Path) -> None:
    from rematch_pipeline.reports.round_report import PHASE_LABELS, STAT_LABELS
    from rematch_pipeline.repository import reading

    round_id = _round(settings, tmp_path)
    with reading(settings) as uow:
        rnd = uow.rounds.get(round_id)
    assert rnd is not None
    stats = dict(rnd.solver_stats or {})
    listed = set(stats) - {"phases", "comparison", "planning"}  # these have tables of their own
    assert listed and listed <= set(STAT_LABELS), sorted(listed - set(STAT_LABELS))
    assert {p["phase"] for p in stats["phases"]} <= set(PHASE_LABELS)
    solver = _section(_report(settings, round_id), "solver")
    headings = [th.text() for th in solver.iter("th") if th.attrs.get("scope") == "row"]
    assert any(h.startswith("persons bound: the most persons an LP over every eligible pair places") for h in headings)
    assert not any(h in listed for h in headings)  # no bare key as a row heading


def test_persons_beyond_share_is_explained_under_the_table_also_when_printed(
        settings: Settings, tmp_path: Path) -> None:
    # Rule: a column a reader cannot work out from its heading is explained where it is read, not in a hover title
    # (which neither a printed page nor a touch screen shows).
    import io

    from pypdf import PdfReader
    from weasyprint import HTML

    html = write_round_report(settings, _round(settings, tmp_path)).read_text(encoding="utf-8")
    section = _section(parse(html), "baselines")
    (heading,) = [th for th in section.iter("th") if th.text().startswith("persons beyond share")]
    assert "title" not in heading.attrs
    note = section.by_id(str(heading.attrs["aria-describedby"])).flat_text()
    assert note.startswith("* Persons beyond share: the persons each municipality received above its fair share")
    printed = " ".join(" ".join((p.extract_text() or "").split())
                       for p in PdfReader(io.BytesIO(HTML(string=html).write_pdf())).pages)
    assert "Persons beyond share: the persons each municipality received above its fair share" in printed


def test_the_report_says_up_to_which_answer_it_counts(settings: Settings, tmp_path: Path) -> None:
    # Rule: the report is written again as answers come in; a copy read later must say which answers it holds.
    from datetime import UTC, datetime

    from rematch_pipeline import offers
    from rematch_pipeline.repository import unit_of_work

    round_id = _round(settings, tmp_path)

    def as_of() -> str:
        (p,) = [p for p in _section(_report(settings, round_id), "figures").iter("p") if p.has_class("answers-as-of")]
        return p.text()

    assert "up to: no answer recorded yet" in as_of()
    with unit_of_work(settings) as uow:
        case_id = uow.offers.of_round(round_id)[0].case_id
        when = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
        assert offers.record_decision(uow, case_id, round_id, "accept", when, None, "test", when) == "inserted"
    assert "up to: 2026-11-24 10:30 UTC" in as_of()


def test_round_status_fills_the_offers_the_round_saw_not_capacity_sent_after_it(
        settings: Settings, tmp_path: Path) -> None:
    # Rule: a past round's fill is of its own inputs; an offer ingested later (same AGS, new offer id) is not in it.
    from rematch_pipeline.rounds import summarize

    round_id = _round(settings, tmp_path)
    before = summarize(settings, round_id).fill
    later = tmp_path / "later.csv"
    later.write_bytes(x.capacity_csv([x.offer("OF-9", ags="05315000", municipality_name="Köln", state="NW",
                                              medical_services="")]))
    assert ingest_file(later, settings).status == "ingested"
    assert summarize(settings, round_id).fill == before
    assert [f["ags"] for f in before] == sorted({"09162000", "05315000"})


def test_every_phase_says_whether_its_objective_and_bound_count_persons_or_quality(settings: Settings,
                                                                                   tmp_path: Path) -> None:
    # Rule: persons and match quality share the phases table, so each row names what its numbers count.
    from rematch_pipeline.reports.round_report import PHASE_COUNTS, PHASE_LABELS

    assert set(PHASE_COUNTS) == set(PHASE_LABELS)
    table = _section(_report(settings, _round(settings, tmp_path)), "solver").iter("table")[0]
    heads = [th.text() for th in table.iter("thead")[0].iter("th")]
    rows = [dict(zip(heads[1:], (td.text() for td in r), strict=True)) for r in _rows(table).values()]
    assert rows and all(r["counts"] == PHASE_COUNTS[r[heads[-1]]] for r in rows), rows
    assert {r["counts"] for r in rows} >= {"persons", "match quality"}


def test_the_quality_bound_has_one_name_wherever_the_report_shows_it(settings: Settings, tmp_path: Path) -> None:
    # Rule: one number, one name. The quality LP bound's phase row is another number (the key figures' bound can be
    # the quality MIP's lower one), so it has another name, and the note under the phases says how they relate.
    from rematch_pipeline.reports.round_report import PHASE_LABELS, QUALITY_BOUND, QUALITY_BOUND_NOTE

    doc = _report(settings, _round(settings, tmp_path))
    figures = _rows(_section(doc, "figures").iter("table")[0])
    phases, stats = (_rows(t) for t in _section(doc, "solver").iter("table")[:2])
    assert figures[QUALITY_BOUND][0].text() == stats[QUALITY_BOUND][0].text()
    lp_row = [h for h, row in phases.items() if row[-1].text() == "quality_bound"]
    assert lp_row == [PHASE_LABELS["quality_bound"]] and not lp_row[0].startswith(QUALITY_BOUND.split(":")[0])
    assert doc.by_id("quality-bound-note").text() == QUALITY_BOUND_NOTE
    assert "quality bound" in QUALITY_BOUND_NOTE and "quality LP bound" in QUALITY_BOUND_NOTE
    others = [h for h in [*figures, *stats, *phases] if "bound" in h and "quality" in h
              and not h.startswith((QUALITY_BOUND, "quality gap: match quality short of the quality bound",
                                    PHASE_LABELS["quality_bound"]))]
    assert others == [], "another name for the quality bound"


def test_persons_proven_maximal_says_how_it_was_proven(settings: Settings, tmp_path: Path) -> None:
    # Rule: a gap to the LP bound beside "proven maximal" is explained where it is read: whole persons below a
    # fractional bound, or the integer program over every eligible pair solved to the end.
    from rematch_pipeline.reports.round_report import persons_proof
    from rematch_pipeline.repository import reading

    assert "allows no whole person more" in persons_proof(1203, 1203.5)
    assert "integer program over every eligible pair was solved to the end" in persons_proof(165, 166.2)
    round_id = _round(settings, tmp_path)
    with reading(settings) as uow:
        stats = dict((uow.rounds.get(round_id) or pytest.fail("no round")).solver_stats or {})
    assert stats["persons_proven_maximal"]
    doc = _report(settings, round_id)
    figures = _rows(_section(doc, "figures").iter("table")[0])
    said = "yes: " + persons_proof(stats["persons_placed"], stats["lp_bound_persons"])
    assert figures[STAT_LABELS["persons_proven_maximal"]][0].text() == said
    assert _rows(_section(doc, "solver").iter("table")[1])[STAT_LABELS["persons_proven_maximal"]][0].text() == said


def test_a_bound_that_is_not_whole_never_reads_as_whole() -> None:
    from rematch_pipeline.reports.charts import fraction

    assert (fraction(104.996), fraction(1203.5), fraction(104.58)) == ("104.996", "1,203.50", "104.58")
    assert fraction(None) == fraction(float("nan")) and fraction(105.0) == "105"


def test_the_statistics_table_follows_the_order_of_their_words(settings: Settings, tmp_path: Path) -> None:
    # Rule: persons, then quality, then the rest (as STAT_LABELS lists them), not the keys' alphabet.
    keys = [row[-1].text() for row in _rows(_section(_report(settings, _round(settings, tmp_path)), "solver")
                                            .iter("table")[1]).values()]
    assert keys == [k for k in STAT_LABELS if k in keys] and keys != sorted(keys)
    assert keys.index("persons_placed") < keys.index("quality") < keys.index("solve_s")
