"""The glossary: one German term per concept, and the packet, the round report and the forms use only its words."""

from __future__ import annotations

import pytest

from rematch_pipeline import glossary
from rematch_pipeline.domain import CAPACITY_DIMENSIONS
from rematch_pipeline.forms import CAPACITY_INSTRUCTIONS, xlsform_workbook
from rematch_pipeline.matching.scoring import ALL_TERMS
from rematch_pipeline.packets.render import render_packet_html
from rematch_pipeline.reports.round_report import DIMENSION_LABELS
from tests.html_tree import Node, parse
from tests.test_packets import ACCEPTED, FAMILY, HEALTH_NO, HEALTH_YES, PENDING, entry, make_packet

OTHER_WORDS = ("Sprachkurs", "Deutschkurs", "Kita-Plätze", "Rollstuhlwohnung")  # synonyms the glossary replaced


def packet_doc() -> Node:
    return parse(render_packet_html(make_packet(
        entry(HEALTH_YES, True), entry(HEALTH_NO, True), entry(ACCEPTED, True), entry(PENDING, False),
        entry(FAMILY, False))))


def test_glossary_labels_exactly_the_score_terms_the_solver_produces() -> None:
    assert set(glossary.SCORE_TERMS) == set(ALL_TERMS)


def test_each_capacity_dimension_has_one_term_of_its_own() -> None:
    assert list(glossary.DIMENSIONS) == list(CAPACITY_DIMENSIONS)
    for table in (glossary.DIMENSIONS, glossary.SCORE_TERMS, glossary.STATUSES):
        german = [t.de for t in table.values()]
        assert len(set(german)) == len(german), german


def test_soft_hyphens_only_split_a_term_into_its_parts() -> None:
    for term in (*glossary.DIMENSIONS.values(), glossary.ROOMS_NEEDED, glossary.PETS, glossary.ARRIVAL_WINDOW):
        assert term.de_breakable.replace(glossary.SHY, "") == term.de
        for word in term.de_breakable.split():
            parts = word.split(glossary.SHY)
            assert len(parts) == 1 or min(map(len, parts)) >= 3, term  # no one- or two-letter stubs
    with pytest.raises(ValueError):
        glossary.Term("Kitaplätze", "Kita", "Kita\u00adplatz")


def test_packet_names_dimensions_needs_and_statuses_in_glossary_terms() -> None:
    doc = packet_doc()
    overview = next(t for t in doc.iter("table") if t.has_class("summary-table"))
    headers = [th.flat_text() for th in overview.iter("thead")[0].iter("th")]
    d = glossary.DIMENSIONS
    assert headers[2:] == [
        d["places_persons"].de, glossary.ROOMS_NEEDED.de, d["kita_u3"].de, d["kita_ue3"].de, d["school_primary"].de,
        d["school_secondary"].de, d["language_course_seats"].de, d["units_wheelchair"].de, glossary.PETS.de,
        glossary.ARRIVAL_WINDOW.de,
    ]
    statuses = {r.iter("td")[0].flat_text() for r in overview.iter("tbody")[0].iter("tr")}
    assert statuses <= {t.de for t in glossary.STATUSES.values()}
    needs = {dt.flat_text() for dl in doc.iter("dl") if dl.has_class("needs") for dt in dl.iter("dt")}
    known = {t.de for t in d.values()} | {glossary.ROOMS_NEEDED.de, glossary.PETS.de,
                                          f"{d['units_wheelchair'].de} erforderlich"}
    assert needs and needs <= known, needs - known
    text = doc.flat_text()
    assert d["language_course_seats"].de in text
    assert not [w for w in OTHER_WORDS if w in text]


def test_report_labels_dimensions_with_the_glossary() -> None:
    assert DIMENSION_LABELS == {k: glossary.DIMENSIONS[k].en for k in CAPACITY_DIMENSIONS}


def test_forms_use_the_glossary_german_terms() -> None:
    wb = xlsform_workbook()
    rows = list(wb["choices"].iter_rows(values_only=True))
    de = rows[0].index("label::German (de)")
    shared = {"languages": glossary.LANGUAGES, "german_level": glossary.GERMAN_LEVELS,
              "medical_needs": glossary.MEDICAL_SERVICES, "pets": glossary.PET_KINDS,
              "pref_settlement": glossary.SETTLEMENTS, "relation": glossary.RELATIONS, "sex": glossary.SEXES,
              "occupation": glossary.OCCUPATIONS, "qualification": glossary.QUALIFICATIONS}
    for list_name, name, *labels in rows[1:]:
        if list_name in shared and name in shared[list_name]:
            assert labels[de - 2] == shared[list_name][name], (list_name, name)
    survey = list(wb["survey"].iter_rows(values_only=True))
    de = survey[0].index("label::German (de)")
    weights = {r[1]: r[de] for r in survey[1:] if str(r[1]).startswith("weight_")}
    for aspect, term in glossary.ASPECTS.items():
        assert f": {term.de} (" in weights[f"weight_{aspect}"], weights[f"weight_{aspect}"]
    instructions = "\n".join(CAPACITY_INSTRUCTIONS)
    for key, term in glossary.DIMENSIONS.items():
        assert f"{key} ({term.de}" in instructions, key
    german = instructions + "\n".join(str(r[de]) for r in survey[1:])
    assert not [w for w in OTHER_WORDS if w in german]
