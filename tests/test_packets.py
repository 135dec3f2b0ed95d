"""Tests of the municipality pre-arrival packet: privacy rules, escaping, file names, determinism and PDF content."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from rematch_pipeline import glossary
from rematch_pipeline.config import DEFAULT_PSEUDONYM_SALT, load_policy
from rematch_pipeline.contract import WEIGHT_RANGE
from rematch_pipeline.domain import Assignment, CapacityOffer, Household, Member, demand_of, pseudonym
from rematch_pipeline.packets.render import (
    PacketHousehold,
    PacketInput,
    render_packet_html,
    render_packet_pdf,
    render_packet_pdf_weasyprint,
    write_packet,
)
from tests.factories import household, member, munich_offer
from tests.html_tree import Node, parse

AGS = "09162000"
ROUND = "R-2026-03"
ROUND_DATE = date(2026, 3, 2)
POLICY = load_policy()

# ---------------------------------------------------------------- builders


def make_offer(ags: str = AGS) -> CapacityOffer:
    return munich_offer(ags=ags, medical_services=frozenset({"dialysis"}),
                        job_sectors_shortage=frozenset({"health_care"}))


def adult(relation: str = "head", sex: str = "female", mobility_impaired: bool = False) -> Member:
    return member(relation, 1985, "health_care", mobility_impaired, sex=sex, qualification="bachelor")


def make_household(case_id: str, **overrides: object) -> Household:
    """A household with contact data and free text, which a packet shows only after acceptance."""
    values: dict[str, object] = dict(
        interview_date=date(2026, 1, 10), languages=("uk", "ru"), german_level="a1", pref_settlement="big_city",
        weights={"work": 5, "education": 4, "community": 3, "healthcare": 2, "housing": 1, "culture": 0},
        members=(adult(),), contact_name=f"Olena Kovalenko-{case_id[-3:]}",
        contact_phone=f"+48 600 {case_id[-3:]} 000", contact_email=f"{case_id.lower()}@mail.example",
        notes=f"Notiz zu {case_id}",
    )
    values.update(overrides)
    return household(case_id, **values)  # type: ignore[arg-type]


def entry(household: Household, accepted: bool, ags: str = AGS) -> PacketHousehold:
    assignment = Assignment(
        round_id=ROUND, case_id=household.case_id, ags=ags, persons=household.persons, score=3.5,
        score_terms={"work": 2.0, "settlement": 2.0, "ties_same_municipality": -0.5}, preference_rank=1,
    )
    return PacketHousehold(household, assignment, pseudonym(household.case_id, DEFAULT_PSEUDONYM_SALT), accepted)


def make_packet(*entries: PacketHousehold, ags: str = AGS) -> PacketInput:
    return PacketInput(
        round_id=ROUND, round_date=ROUND_DATE, offer=make_offer(ags), households=tuple(entries),
        coordination_contact="Koordinierungsteam Re:Match, team@rematch.example", response_deadline=date(2026, 3, 9),
        policy=POLICY,
    )


def pdf_text(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


# ---------------------------------------------------------------- a small HTML tree (stdlib only)

def section_of(doc: Node, ph: PacketHousehold) -> Node:
    return doc.by_id(f"hh-{ph.pseudonym}")


# ---------------------------------------------------------------- fixtures

HEALTH_YES = make_household(
    "RM-2026-00101", consent_health_share=True, medical_needs=("dialysis",),
    members=(adult(mobility_impaired=True), adult("spouse", "male")),
)
HEALTH_NO = make_household(
    "RM-2026-00102", consent_health_share=False, medical_needs=("oncology",),
    members=(adult(mobility_impaired=True), adult("spouse", "male")),
)
ACCEPTED = make_household("RM-2026-00201", notes="Braucht Erdgeschoss.\nSpricht etwas Englisch.")
PENDING = make_household("RM-2026-00202", notes="Hat Verwandte in Augsburg.", contact_phone="+48 777 888 999")
FAMILY = make_household(
    "RM-2026-00301", german_level="a2", pets="dog", ties_ags="09162000",
    members=(
        adult(), adult("spouse", "male"),
        Member("child", "female", 2025, False, "none", "none"),  # 1 → Kita U3
        Member("child", "male", 2022, False, "none", "none"),  # 4 → Kita Ü3
        Member("child", "female", 2019, False, "none", "none"),  # 7 → primary
        Member("child", "male", 2013, False, "none", "none"),  # 13 → secondary
        Member("parent", "female", 1950, False, "retail", "vocational"),  # 76 → 65+
    ),
)


@pytest.fixture(scope="module")
def mixed_packet() -> PacketInput:
    return make_packet(
        entry(HEALTH_YES, True), entry(HEALTH_NO, True), entry(ACCEPTED, True), entry(PENDING, False),
        entry(FAMILY, False),
    )


@pytest.fixture(scope="module")
def mixed_html(mixed_packet: PacketInput) -> str:
    return render_packet_html(mixed_packet)


@pytest.fixture(scope="module")
def mixed_pdf(mixed_html: str) -> bytes:
    return render_packet_pdf(mixed_html)


# ---------------------------------------------------------------- privacy rules


def test_health_details_only_with_consent(mixed_packet: PacketInput, mixed_html: str, mixed_pdf: bytes) -> None:
    doc = parse(mixed_html)
    by_case = {ph.household.case_id: ph for ph in mixed_packet.households}
    shared = section_of(doc, by_case[HEALTH_YES.case_id]).flat_text()
    withheld = section_of(doc, by_case[HEALTH_NO.case_id]).flat_text()
    assert "Dialyse" in shared
    assert "Mobilitätseingeschränkte Personen Person 1" in shared
    assert "nicht zugestimmt" not in shared
    assert "Gesundheitsangaben werden nicht weitergegeben" in withheld
    assert "Mobilitätseingeschränkt" not in withheld
    # The withheld household's condition appears nowhere, neither in the HTML nor in the PDF.
    assert "Onkologie" not in doc.flat_text() and "oncology" not in mixed_html
    assert not any("Onkologie" in page for page in pdf_text(mixed_pdf))
    # Both need an accessible unit (a mobility-impaired member). That need is a disability detail too, so the
    # packet states it only with consent: in the household's section, its summary row and the column's total.
    assert "Barrierefreie Wohnung erforderlich ja" in shared
    assert "Barrierefreie Wohnung erforderlich keine Angabe" in withheld
    summary = next(n for n in doc.iter("table") if n.has_class("summary-table"))
    body = summary.iter("tbody")[0]
    rows = {r.iter("th")[0].flat_text(): [c.flat_text() for c in r.iter("td")] for r in body.iter("tr")}
    assert rows[by_case[HEALTH_YES.case_id].pseudonym][8] == "ja"
    assert rows[by_case[HEALTH_NO.case_id].pseudonym][8] == "keine Angabe"
    assert [c.flat_text() for c in summary.iter("tfoot")[0].iter("td")][8] == "1"


def test_contact_data_only_after_acceptance(mixed_packet: PacketInput, mixed_html: str, mixed_pdf: bytes) -> None:
    doc = parse(mixed_html)
    pending = next(ph for ph in mixed_packet.households if ph.household.case_id == PENDING.case_id)
    accepted_text = section_of(doc, next(ph for ph in mixed_packet.households if ph.household is ACCEPTED)).flat_text()
    pending_text = section_of(doc, pending).flat_text()
    for value in (ACCEPTED.case_id, ACCEPTED.contact_name, ACCEPTED.contact_phone, ACCEPTED.contact_email,
                  "Braucht Erdgeschoss."):
        assert value in accepted_text
    assert "Kontaktdaten folgen nach der Annahme" in pending_text and pending.pseudonym in pending_text
    pages = "\n".join(pdf_text(mixed_pdf))
    for hh in (PENDING, FAMILY):  # neither has accepted yet: no case id, name, phone, e-mail or notes anywhere
        for secret in (hh.case_id, hh.contact_name, hh.contact_phone, hh.contact_email, hh.notes):
            assert secret not in mixed_html, secret
            assert secret not in pages, secret


def test_the_households_name_stands_with_its_contact_after_acceptance_and_a_missing_one_adds_no_line() -> None:
    # Rule: contact_name is contact data: in the packet with phone and e-mail once the household accepted.
    named, nameless = make_household("RM-2026-00211"), make_household("RM-2026-00212", contact_name="")
    doc = parse(render_packet_html(make_packet(entry(named, True), entry(nameless, True))))
    shown = [[n.flat_text() for n in section_of(doc, ph).iter("dd") if n.has_class("contact-name")]
             for ph in (entry(named, True), entry(nameless, True))]
    assert shown == [[named.contact_name], []]
    assert "Name" not in [n.flat_text() for n in section_of(doc, entry(nameless, True)).iter("dt")]


def test_interview_notes_reach_the_municipality_only_with_health_consent(
        mixed_packet: PacketInput, mixed_html: str, mixed_pdf: bytes) -> None:
    # Notes are free text that may hold health details (contract §1): after acceptance, and only with consent.
    doc = parse(mixed_html)
    no, yes = (next(ph for ph in mixed_packet.households if ph.household is hh) for hh in (HEALTH_NO, HEALTH_YES))
    assert HEALTH_NO.contact_phone in section_of(doc, no).flat_text()  # accepted: the contact is there
    assert HEALTH_NO.contact_name in section_of(doc, no).flat_text()  # the name is contact data, not a health detail
    assert HEALTH_NO.notes not in mixed_html and HEALTH_NO.notes not in "\n".join(pdf_text(mixed_pdf))
    assert HEALTH_YES.notes in section_of(doc, yes).flat_text()


def test_interview_notes_are_introduced_as_the_households_untranslated_words(
        mixed_packet: PacketInput, mixed_html: str) -> None:
    # Notes stay in the language they were taken in: the caseworker must not read them as the packet's own German.
    doc = parse(mixed_html)
    section = section_of(doc, next(ph for ph in mixed_packet.households if ph.household is HEALTH_YES))
    label = next(p for p in section.iter("p") if p.has_class("notes-label")).flat_text()
    assert "im Wortlaut" in label and "nicht übersetzt" in label


def test_the_households_weights_name_their_scale(mixed_html: str) -> None:
    low, high = WEIGHT_RANGE
    labels = [dt.flat_text() for dt in parse(mixed_html).iter("dt") if dt.flat_text().startswith("Wichtig ist")]
    assert labels and all(f"Gewicht {low} bis {high}" in label for label in labels)


def test_weight_on_health_care_is_shown_only_with_consent(mixed_packet: PacketInput, mixed_html: str) -> None:
    doc = parse(mixed_html)
    no, yes = (next(ph for ph in mixed_packet.households if ph.household is hh) for hh in (HEALTH_NO, HEALTH_YES))
    assert HEALTH_NO.weights["healthcare"] and HEALTH_YES.weights["healthcare"]
    weights = {ph.pseudonym: next(dd for dd in section_of(doc, ph).iter("dd") if dd.has_class("weights")).flat_text()
               for ph in (no, yes)}
    assert glossary.ASPECTS["healthcare"].de not in weights[no.pseudonym]
    assert glossary.ASPECTS["healthcare"].de in weights[yes.pseudonym]


def test_households_not_coming_are_counted_under_their_own_status() -> None:
    packet = replace(make_packet(entry(PENDING, False)), withdrawn={"withdrawn": 1, "declined": 2})
    doc = parse(render_packet_html(packet))
    line = next(dd for dd in doc.iter("dd") if dd.has_class("withdrawn")).flat_text()
    assert line.startswith("abgelehnt: 2 Haushalte; zurückgezogen: 1 Haushalt")
    assert "Frist abgelaufen" not in line  # a household erased on request did not let its offer lapse


def _text_boxes(box: object, cell: object = None) -> list[tuple[object, object]]:
    cell = box if type(box).__name__ == "TableCellBox" else cell
    found = [(box, cell)] if hasattr(box, "text") else []
    for child in getattr(box, "children", None) or []:
        found += _text_boxes(child, cell)
    return found


def test_overview_text_stays_inside_its_cell_and_the_page() -> None:
    from weasyprint import HTML

    packet = replace(make_packet(entry(ACCEPTED, True), entry(PENDING, False)),
                     withdrawn={"declined": 1, "expired": 2, "withdrawn": 1},
                     coordination_contact="Koordinationsteam Re:Match, koordination@rematch.example")
    page = HTML(string=render_packet_html(packet)).render().pages[0]._page_box
    right = page.content_box_x() + page.width
    over = []
    for text, cell in _text_boxes(page.children[0]):  # the document, not the page's running header and footer
        end = text.position_x + text.width
        limit = right if cell is None else cell.content_box_x() + cell.width
        if end > limit + 0.5:
            over.append((text.text, round(end - limit, 1)))
    assert over == [], "text running out of its cell or off the page"


def test_script_tag_in_notes_is_escaped() -> None:
    notes = '<script>alert("x")</script><img src=x onerror="alert(1)"> & <b>fett</b>'
    hostile = make_household("RM-2026-00666", notes=notes, contact_email="<i>a@b.example</i>",
                             contact_name='<b onmouseover="x()">Olena</b>')
    packet = make_packet(entry(hostile, True))
    packet = replace(packet, offer=replace(packet.offer, municipality_name="<script>x()</script>Stadt"))
    html = render_packet_html(packet)
    doc = parse(html)
    tags = {n.tag for n in doc.iter()}
    assert not tags & {"script", "img", "b", "i"}
    assert "<script" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    notes_div = [n for n in doc.iter("div") if n.has_class("notes")]
    assert len(notes_div) == 1 and notes_div[0].text() == notes  # shown verbatim, as text
    assert [n.text() for n in doc.iter("dd") if n.has_class("contact-name")] == [hostile.contact_name]
    assert "<script>alert(\"x\")</script>" in "\n".join(pdf_text(render_packet_pdf(html)))


def test_household_of_another_municipality_is_refused() -> None:
    stray = entry(make_household("RM-2026-00777"), True, ags="05315000")
    with pytest.raises(ValueError, match="another municipality"):
        render_packet_html(make_packet(entry(ACCEPTED, True), stray))


# ---------------------------------------------------------------- files and determinism


def test_packet_file_names_use_only_ags_and_round(tmp_path: Path) -> None:
    packet = make_packet(entry(ACCEPTED, True), entry(PENDING, False))
    files = write_packet(packet, tmp_path)
    stem = f"{AGS}/{ROUND}/packet_{AGS}_{ROUND}"
    assert files.html_path.relative_to(tmp_path).as_posix() == f"{stem}.html"
    assert files.pdf_path.relative_to(tmp_path).as_posix() == f"{stem}.pdf"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        f"{stem}.html", f"{stem}.pdf",
    ]
    assert files.pdf_path.read_bytes().startswith(b"%PDF-")
    for bad_round in ("../escape", "R/1", "", "..", "R 1"):
        with pytest.raises(ValueError):
            write_packet(replace(packet, round_id=bad_round), tmp_path)
    with pytest.raises(ValueError):
        write_packet(replace(packet, offer=replace(packet.offer, ags="9162000")), tmp_path)


def test_same_input_gives_identical_html_and_pdf(tmp_path: Path) -> None:
    entries = (entry(ACCEPTED, True), entry(PENDING, False), entry(FAMILY, False))
    first = write_packet(make_packet(*entries), tmp_path / "a")
    second = write_packet(make_packet(*reversed(entries)), tmp_path / "b")  # input order does not matter
    assert first.html_path.read_bytes() == second.html_path.read_bytes()
    assert first.pdf_path.read_bytes() == second.pdf_path.read_bytes()
    assert (first.html_sha256, first.pdf_sha256) == (second.html_sha256, second.pdf_sha256)
    pdf = first.pdf_path.read_bytes()
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf


def test_pdf_is_identical_without_harfbuzz_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    import weasyprint.pdf.fonts

    monkeypatch.setattr(weasyprint.pdf.fonts, "harfbuzz_subset", None)  # forces WeasyPrint's fontTools fallback
    html = render_packet_html(make_packet(entry(ACCEPTED, True)))
    assert render_packet_pdf_weasyprint(html) == render_packet_pdf_weasyprint(html)


# ---------------------------------------------------------------- content


def test_pdf_contains_household_sections(mixed_packet: PacketInput, mixed_pdf: bytes) -> None:
    pages = pdf_text(mixed_pdf)
    assert "Vorab-Informationen zur Aufnahme" in pages[0]
    heading_pages: dict[str, int] = {}
    for ph in mixed_packet.households:
        hits = [i for i, text in enumerate(pages) if f"Haushalt {ph.pseudonym}\n" in text + "\n"]
        assert hits, f"no section for {ph.pseudonym}"
        heading_pages[ph.pseudonym] = hits[-1]
    assert min(heading_pages.values()) >= 1, "the overview has page one to itself"
    ordered = sorted(heading_pages)
    assert [heading_pages[p] for p in ordered] == sorted(heading_pages.values()), "sections ordered by pseudonym"
    reader = PdfReader(io.BytesIO(mixed_pdf))
    assert reader.root_object["/Lang"] == "de"
    assert reader.metadata is not None and AGS in (reader.metadata.title or "")


def test_html_structure_is_accessible(mixed_html: str) -> None:
    doc = parse(mixed_html)
    html = doc.iter("html")[0]
    assert html.attrs.get("lang") == "de"
    assert len(doc.iter("h1")) == 1 and doc.iter("main")
    for th in doc.iter("th"):
        assert th.attrs.get("scope") in {"col", "row"}, th.flat_text()
    for table in doc.iter("table"):
        assert table.iter("caption") and table.iter("thead")


def test_summary_and_household_needs_follow_demand_of(mixed_packet: PacketInput, mixed_html: str) -> None:
    doc = parse(mixed_html)
    family = next(ph for ph in mixed_packet.households if ph.household is FAMILY)
    demand = demand_of(FAMILY, ROUND_DATE, POLICY)
    assert (demand.kita_u3, demand.kita_ue3, demand.school_primary, demand.school_secondary) == (1, 1, 1, 1)
    summary = next(n for n in doc.iter("table") if n.has_class("summary-table"))
    body = summary.iter("tbody")[0]
    rows = {r.iter("th")[0].flat_text(): [c.flat_text() for c in r.iter("td")] for r in body.iter("tr")}
    assert list(rows) == sorted(ph.pseudonym for ph in mixed_packet.households)
    assert rows[family.pseudonym] == [
        "Antwort ausstehend", "7", "4", "1", "1", "1", "1", str(demand.language_course_seats), "nein", "Hund",
        "10.03.–24.03.2026",
    ]
    section = section_of(doc, family)
    composition = next(n for n in section.iter("table") if n.has_class("composition"))
    counts = {r.iter("th")[0].flat_text(): [c.flat_text() for c in r.iter("td")] for r in composition.iter("tr")[1:]}
    assert counts["0\u20132 Jahre"] == ["1", "0", "0", "1"]
    assert counts["65 Jahre und älter"] == ["1", "0", "0", "1"]
    assert counts["Summe"] == ["4", "3", "0", "7"]
    text = section.flat_text()
    assert "Angehörige oder Bekannte leben in Ihrer Gemeinde" in text
    assert "Warum hier: Rang 1 auf der Wunschliste des Haushalts; passt vor allem bei: Arbeit, Gewünschter " \
           "Siedlungstyp." in text


def test_cover_counts_and_arrival_window(mixed_html: str) -> None:
    cover = parse(mixed_html).by_id("cover-title")
    text = parse(mixed_html).iter("section")[0].flat_text()
    assert cover.flat_text() == "Vorab-Informationen zur Aufnahme"
    assert "Zugeordnete Haushalte 5" in text and "Personen insgesamt 13" in text
    assert "Davon angenommen 3 Haushalte" in text and "Antwort ausstehend 2 Haushalte" in text
    assert "Ankunftszeitraum 10.03.2026 bis 24.03.2026" in text
    assert "team@rematch.example" in text


# ---------------------------------------------------------------- layout for caseworkers


def household_headings(pages: list[str], packet: PacketInput) -> dict[str, int]:
    """The page each household's heading is on."""
    return {ph.pseudonym: next(i for i, text in enumerate(pages) if f"Haushalt {ph.pseudonym}\n" in text + "\n")
            for ph in packet.households}


def test_overview_of_every_household_is_page_one(mixed_packet: PacketInput, mixed_pdf: bytes) -> None:
    pages = pdf_text(mixed_pdf)
    for ph in mixed_packet.households:
        assert ph.pseudonym in pages[0], ph.pseudonym
    assert "Haushalte und ihre Bedarfe" in pages[0] and "Ankunfts" in pages[0]
    assert min(household_headings(pages, mixed_packet).values()) == 1, "household sections follow on page two"


def demo_size_packet() -> PacketInput:
    """Eight households, the demo's size per municipality, the larger ones accepted with notes and health details."""
    entries = []
    for i in range(8):
        base = (FAMILY, HEALTH_YES, ACCEPTED, PENDING)[i % 4]
        hh = replace(base, case_id=f"RM-2026-01{i:03d}", consent_health_share=i % 2 == 0,
                     notes="Braucht Erdgeschoss.\nSpricht etwas Englisch." if i % 2 == 0 else "")
        entries.append(entry(hh, accepted=i % 3 != 2))
    return make_packet(*entries)


def test_each_household_takes_at_most_half_a_page() -> None:
    packet = demo_size_packet()
    pages = pdf_text(render_packet_pdf(render_packet_html(packet)))
    headings = household_headings(pages, packet)
    assert len(pages) == 1 + (len(packet.households) + 1) // 2, f"{len(pages)} pages"
    per_page = [list(headings.values()).count(i) for i in range(1, len(pages))]
    assert per_page[:-1] == [2] * (len(pages) - 2), per_page


def test_no_score_table_but_a_one_line_reason(mixed_packet: PacketInput, mixed_html: str) -> None:
    doc = parse(mixed_html)
    assert not [t for t in doc.iter("table") if t.has_class("score-terms")]
    assert "Beitrag" not in doc.flat_text() and "Gesamtwert" not in doc.flat_text()
    for ph in mixed_packet.households:
        reasons = [n.flat_text() for n in section_of(doc, ph).iter() if n.has_class("reason")]
        assert len(reasons) == 1 and reasons[0].startswith("Warum hier: ") and reasons[0].count(".") == 1, reasons


def scored(hh: Household, **terms: float) -> PacketHousehold:
    ph = entry(hh, True)
    return replace(ph, assignment=replace(ph.assignment, score_terms=terms))


def test_reason_names_no_need_the_household_does_not_have() -> None:
    from rematch_pipeline.packets.render import match_reason

    # The solver scores health care and education for every household that weights them, need or not.
    terms = {"healthcare": 5.0, "education": 4.0, "work": 1.0}
    no_needs = make_household("RM-2026-00901", consent_health_share=True, medical_needs=())
    withheld = make_household("RM-2026-00902", consent_health_share=False, medical_needs=("dialysis",))
    has_both = replace(FAMILY, case_id="RM-2026-00903", consent_health_share=True, medical_needs=("dialysis",))
    reason = {hh.case_id: match_reason(hh, scored(hh, **terms).assignment, demand_of(hh, ROUND_DATE, POLICY))
              for hh in (no_needs, withheld, has_both)}
    for case_id in (no_needs.case_id, withheld.case_id):
        assert "Gesundheit" not in reason[case_id] and "Bildung" not in reason[case_id], reason[case_id]
        assert "Arbeit" in reason[case_id]
    assert "Gesundheitsversorgung, Bildung und Schule, Arbeit" in reason[has_both.case_id]
    doc = parse(render_packet_html(make_packet(scored(no_needs, **terms))))
    section = doc.by_id(f"hh-{pseudonym(no_needs.case_id, DEFAULT_PSEUDONYM_SALT)}").flat_text()
    for need in ("Kitaplätze", "Grundschulplätze", "weiterführende Schule", "Dialyse", "Rollstuhlgerechte",
                 "Mobilitätseingeschränkte"):
        assert need not in section, need


def test_arrival_window_starts_the_day_after_the_answer_deadline() -> None:
    from rematch_pipeline.packets.render import ARRIVAL_WINDOW_DAYS, arrival_window

    deadline = date(2026, 3, 9)
    assert arrival_window(deadline) == (date(2026, 3, 10), date(2026, 3, 10 + ARRIVAL_WINDOW_DAYS))
    assert arrival_window(deadline, date(2026, 1, 1))[0] == date(2026, 3, 10)
    assert arrival_window(deadline, date(2026, 4, 1))[0] == date(2026, 4, 1)  # capacity that starts later


def test_words_break_only_at_glossary_soft_hyphens_never_inside_references(
        mixed_packet: PacketInput, mixed_html: str, mixed_pdf: bytes) -> None:
    from rematch_pipeline import glossary
    from rematch_pipeline.packets.render import TEMPLATE_DIR

    css = (TEMPLATE_DIR / "packet.css").read_text()
    assert "hyphens: manual" in css and "hyphens: auto" not in css and "overflow-wrap: anywhere" not in css
    doc = parse(mixed_html)
    assert doc.iter("html")[0].attrs.get("lang") == "de"
    terms = [t for v in vars(glossary).values()
             for t in (v.values() if isinstance(v, dict) else [v]) if isinstance(t, glossary.Term)]
    allowed = {w for t in terms for w in t.de_breakable.split() if glossary.SHY in w}
    shy_words = {w for w in doc.text().split() if glossary.SHY in w}
    assert shy_words and shy_words <= allowed, shy_words - allowed
    # Pseudonyms, case references and the round id (hyphens in them are break points) are kept on one line.
    refs = [mixed_packet.round_id] + [ph.pseudonym for ph in mixed_packet.households] + [
        ph.household.case_id for ph in mixed_packet.households if ph.accepted]

    def unprotected(node: Node, inside: bool) -> list[str]:
        if node.tag in {"head", "title"} or node.has_class("notes"):  # notes are the interviewer's free text
            return []
        inside = inside or node.has_class("ref")
        found = []
        for c in node.children:
            if isinstance(c, Node):
                found += unprotected(c, inside)
            elif not inside:
                found += [r for r in refs if r in c]
        return found

    assert unprotected(doc, False) == []
    assert doc.iter("header")[0].iter("span") and all(s.has_class("ref") for s in doc.iter("header")[0].iter("span"))
    pages = "\n".join(pdf_text(mixed_pdf))
    for ref in refs:
        assert ref in pages, ref


def test_the_packet_tells_the_caseworker_what_comes_next() -> None:
    # Rule: while answers are pending, the deadline to keep the places free; always the arrival window; and whether
    # a newer version will follow (declines drop out) or this one is final.
    def steps(packet: PacketInput) -> str:
        doc = parse(render_packet_html(packet))
        (ol,) = [n for n in doc.iter("ol") if n.has_class("next-steps")]
        return ol.flat_text()

    pending = steps(make_packet(entry(ACCEPTED, True), entry(PENDING, False)))
    assert "bis zum 09.03.2026" in pending and "Plätze bis dahin frei" in pending
    assert "vom 10.03.2026 bis zum" in pending and "neue Fassung" in pending
    final = steps(replace(make_packet(entry(ACCEPTED, True)), final=True))
    assert "endgültig" in final and "neue Fassung" not in final and "Plätze bis dahin frei" not in final
    assert not [n for n in parse(render_packet_html(make_packet())).iter("ol") if n.has_class("next-steps")]
