"""Tests of the households' offer letters: catalogues, language choice, structure, PDF text, escaping, versions."""

from __future__ import annotations

import io
import logging
import re
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from pypdf import PdfReader
from sqlalchemy import select, update

from rematch_pipeline.config import (
    DEFAULT_PSEUDONYM_SALT,
    Settings,
    UnreachableContact,
    load_policy,
    load_settings,
    reachable_contact,
)
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.domain import Assignment, CapacityOffer, Household, pseudonym
from rematch_pipeline.packets.letters import (
    LOCALE_DIR,
    LetterInput,
    available_languages,
    letter_language,
    render_letter_html,
    render_letter_pdf,
    render_round_letters,
    round_letter_inputs,
    write_letter,
)
from rematch_pipeline.rounds import decide, offer_round, run_round
from tests import exports as x
from tests.factories import household, member, munich_offer, store_records
from tests.html_tree import Node, parse

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "rematch_pipeline"
LANGS = ("uk", "ru", "pl", "de", "en")
ROUND, ROUND_DATE, RESPOND_BY = "R-2026-11-23", date(2026, 11, 23), date(2026, 11, 30)
POLICY = load_policy()
EXPECTED = {  # what each catalogue must make of the same letter
    "uk": {"deadline": "30 листопада 2026 р.", "settlement": "велике місто", "state": "Баварія (Bayern)",
           "work": "Робота: місцевий попит на ваші професії", "title": "Пропозиція житла: Мюнхен",
           "name": "Мюнхен (München)", "persons": "7 осіб", "rooms": "4 кімнати"},
    "ru": {"deadline": "30 ноября 2026 г.", "settlement": "большой город", "state": "Бавария (Bayern)",
           "work": "Работа: местный спрос на ваши профессии", "title": "Предложение жилья: Мюнхен",
           "name": "Мюнхен (München)", "persons": "7 человек", "rooms": "4 комнаты"},
    "pl": {"deadline": "30 listopada 2026", "settlement": "duże miasto", "state": "Bawaria (Bayern)",
           "work": "Praca: lokalne zapotrzebowanie na Państwa zawody", "title": "Propozycja zakwaterowania: Monachium",
           "name": "Monachium (München)", "persons": "7 osób", "rooms": "4 pokoje"},
    "de": {"deadline": "30. November 2026", "settlement": "Großstadt", "state": "Bayern",
           "work": "Arbeit: Bedarf an Arbeitskräften in Ihren Berufen",
           "title": "Angebot einer Unterkunft in München", "name": "München", "persons": "7 Personen",
           "rooms": "4 Zimmern"},
    "en": {"deadline": "30 November 2026", "settlement": "big city", "state": "Bavaria (Bayern)",
           "work": "Work: local demand for your occupations", "title": "Offer of accommodation in München",
           "name": "München", "persons": "7 persons", "rooms": "4 rooms"},
}

# ---------------------------------------------------------------- builders


def make_offer(**overrides: Any) -> CapacityOffer:
    return munich_offer(**{"medical_services": frozenset({"dialysis", "oncology"}),
                           "job_sectors_shortage": frozenset({"it", "retail"}), **overrides})


def make_household(case_id: str = "RM-2026-00301", **overrides: Any) -> Household:
    """A large family without consent to share health details, with contact data and free text to keep out."""
    values: dict[str, Any] = dict(
        consent_health_share=False, languages=("uk", "ru"), german_level="a1", medical_needs=("dialysis",),
        pets="dog", pref_settlement="big_city", ties_ags="09162000",
        weights={"work": 5, "education": 4, "community": 3, "healthcare": 2, "housing": 1, "culture": 0},
        members=(
            member("head", 1985, "it"), member("spouse", 1984, "construction", mobility_impaired=True),
            member("child", 2025), member("child", 2022), member("child", 2019), member("child", 2013),
            member("parent", 1950, "retail"),  # 76: past working age, so retail is not her sector here
        ),
        contact_phone="+48 600 123 456", contact_email="family@mail.example", notes="Sister in Lviv; trauma.",
    )
    values.update(overrides)
    return household(case_id, **values)


def make_letter(language: str = "uk", household: Household | None = None, offer: CapacityOffer | None = None,
                terms: dict[str, float] | None = None, **overrides: Any) -> LetterInput:
    hh = household or make_household()
    of = offer or make_offer()
    score_terms = terms if terms is not None else {
        "work": 2.5, "settlement": 2.0, "ties": 4.0, "community": 1.5, "culture": 0.0, "municipality_interest": 0.25,
    }
    assignment = Assignment(round_id=ROUND, case_id=hh.case_id, ags=of.ags, persons=hh.persons,
                            score=round(sum(score_terms.values()), 6), score_terms=score_terms, preference_rank=2,
                            offer_id=of.offer_id)
    values: dict[str, Any] = dict(
        round_id=ROUND, round_date=ROUND_DATE, household=hh, assignment=assignment, offer=of, respond_by=RESPOND_BY,
        language=language, coordination_contact="Re:Match Koordinationsteam, team@rematch.example", policy=POLICY,
        eligible_count=5,
    )
    values.update(overrides)
    values.setdefault("pseudonym", pseudonym(values["household"].case_id, DEFAULT_PSEUDONYM_SALT))
    return LetterInput(**values)


def pdf_text(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def headings(doc: Node) -> list[Node]:
    return [n for n in doc.iter() if n.tag in {"h1", "h2", "h3", "h4", "h5", "h6"}]


def rows_by(doc: Node, table_class: str, attr: str) -> dict[str, tuple[str, str]]:
    table = next(n for n in doc.iter("table") if n.has_class(table_class))
    body = table.iter("tbody")[0]
    return {str(r.attrs[attr]): (r.iter("th")[0].flat_text(), r.iter("td")[0].flat_text()) for r in body.iter("tr")}


@pytest.fixture(scope="module")
def letters_html() -> dict[str, str]:
    return {lang: render_letter_html(make_letter(lang)) for lang in LANGS}


# ---------------------------------------------------------------- catalogues


def _catalog(path: Path, locale: str | None = None) -> Any:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


_PLACEHOLDER_RE = re.compile(r"%\([a-z_]+\)[sd]")


def _msgids(catalog: Any) -> set[Any]:
    return {m.id for m in catalog if m.id}


def test_catalogues_for_uk_ru_pl_de_en_translate_every_message_with_its_placeholders() -> None:
    template = _catalog(LOCALE_DIR / "messages.pot")
    assert len(_msgids(template)) > 50
    for lang in LANGS:
        catalog = _catalog(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", lang)
        assert _msgids(catalog) == _msgids(template), f"{lang}: catalogue not updated from messages.pot"
        assert not catalog.obsolete, f"{lang}: obsolete messages left in the catalogue"
        for m in catalog:
            if not m.id:
                continue
            assert not m.fuzzy, f"{lang}: fuzzy translation of {m.id!r}"
            forms = m.string if isinstance(m.string, tuple) else (m.string,)
            if isinstance(m.id, tuple):
                assert len(forms) == catalog.num_plurals, f"{lang}: plural forms missing for {m.id[0]!r}"
            assert all(f.strip() for f in forms), f"{lang}: no translation of {m.id!r}"
        problems = [(m.id, errors) for m, errors in catalog.check()]
        assert not problems, f"{lang}: placeholders differ from the msgid: {problems}"
        for m in catalog:  # Babel's check lets a translation drop a placeholder: a dropped number is a wrong letter
            if m.id:
                ids = m.id if isinstance(m.id, tuple) else (m.id,)
                forms = m.string if isinstance(m.string, tuple) else (m.string,)
                wanted = set(_PLACEHOLDER_RE.findall(ids[-1]))
                assert all(set(_PLACEHOLDER_RE.findall(f)) == wanted for f in forms), f"{lang}: {forms!r}"


def test_message_template_is_up_to_date_with_template_and_code() -> None:
    with (REPO / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    extracted = {message for _file, _line, message, _comments, _context in
                 extract_from_dir(str(PACKAGE), method_map, options_map) if message}
    assert extracted, "babel.cfg extracts nothing"
    assert extracted == _msgids(_catalog(LOCALE_DIR / "messages.pot")), \
        "messages.pot is stale: run pybabel extract and update (see babel.cfg)"


def test_translations_carry_no_markup() -> None:
    # Template messages are trusted markup under newstyle gettext, so a catalogue must not smuggle any in.
    for lang in LANGS:
        for m in _catalog(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", lang):
            if m.id:
                for form in m.string if isinstance(m.string, tuple) else (m.string,):
                    assert not set(form) & set("<>&"), f"{lang}: markup character in {form!r}"


# ---------------------------------------------------------------- language choice


@pytest.mark.parametrize(("spoken", "expected"), [
    (("uk", "ru"), "uk"), (("de", "en", "uk"), "uk"), (("ru", "en"), "ru"), (("de",), "de"), (("de", "en"), "en"),
    (("ru",), "ru"), (("pl",), "pl"), (("other",), "uk"), (("pl", "ru", "other"), "ru"), (("pl", "other"), "pl"),
])
def test_letter_language_is_the_first_spoken_with_a_catalogue_else_ukrainian(
        spoken: tuple[str, ...], expected: str) -> None:
    assert set(available_languages()) >= set(LANGS)
    assert letter_language(make_household(languages=spoken)) == expected


def test_adding_a_catalogue_adds_a_language(tmp_path: Path) -> None:
    for lang in ("uk", "pl"):
        (tmp_path / lang / "LC_MESSAGES").mkdir(parents=True)
        shutil.copy(LOCALE_DIR / "uk" / "LC_MESSAGES" / "messages.po", tmp_path / lang / "LC_MESSAGES")
    (tmp_path / "ru" / "LC_MESSAGES").mkdir(parents=True)  # no catalogue in it: not a language
    assert available_languages(tmp_path) == ("pl", "uk")
    assert letter_language(make_household(languages=("ru", "pl")), available_languages(tmp_path)) == "pl"
    assert letter_language(make_household(languages=("ru", "pl")), ("uk",)) == "uk"


def test_letter_in_a_language_without_catalogue_is_refused() -> None:
    for lang in ("cs", "../uk", ""):
        with pytest.raises(ValueError, match="no catalogue"):
            render_letter_html(make_letter(lang))


# ---------------------------------------------------------------- structure and content


@pytest.mark.parametrize("lang", LANGS)
def test_letter_html_is_structured_and_accessible_in_each_language(lang: str, letters_html: dict[str, str]) -> None:
    doc = parse(letters_html[lang])
    expected = EXPECTED[lang]
    assert doc.iter("html")[0].attrs.get("lang") == lang
    assert len(doc.iter("h1")) == 1 and doc.iter("h1")[0].flat_text() == expected["title"]
    levels = [int(h.tag[1]) for h in headings(doc)]
    assert levels[0] == 1 and all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), levels
    assert len(doc.iter("main")) == 1
    for th in doc.iter("th"):
        assert th.attrs.get("scope") in {"col", "row"}, th.flat_text()
    for table in doc.iter("table"):
        assert table.iter("caption") and table.iter("thead")
    times = [tm for tm in doc.iter("time") if not tm.has_class("arrival")]
    assert times and all(tm.attrs.get("datetime") == RESPOND_BY.isoformat() for tm in times)
    assert {tm.flat_text() for tm in times} == {expected["deadline"]}
    assert doc.by_id("respond-by").flat_text() == expected["deadline"]
    municipality = doc.by_id("municipality")
    assert [n.text() for n in municipality.iter("dd") if n.has_class("municipality-name")] == [expected["name"]]
    facts = municipality.text()  # inline elements (the German names) without added spaces
    assert "09162000" in facts and expected["settlement"] in facts and expected["state"] in facts
    case_ids = [n.flat_text() for n in doc.iter("strong") if n.has_class("case-id")]
    assert case_ids == ["RM-2026-00301"] and ROUND in doc.by_id("answer").flat_text()
    assert "team@rematch.example" in doc.by_id("answer").flat_text()


@pytest.mark.parametrize("lang", LANGS)
def test_explanation_lists_score_terms_largest_first(lang: str, letters_html: dict[str, str]) -> None:
    doc = parse(letters_html[lang])
    terms = rows_by(doc, "terms", "data-term")
    # culture contributed 0.00 and is left out; the rest in descending order.
    assert list(terms) == ["ties", "work", "settlement", "community", "municipality_interest"]
    assert terms["work"][0] == EXPECTED[lang]["work"]
    assert terms["work"][1] == ("2.50" if lang == "en" else "2,50")
    total = next(n for n in doc.iter("table") if n.has_class("terms")).iter("tfoot")[0].flat_text()
    assert total.endswith("10.25" if lang == "en" else "10,25")
    rank = next(n for n in doc.iter("p") if n.has_class("rank")).flat_text()
    assert "2" in rank and "5" in rank


def test_translated_letters_contain_no_english_labels(letters_html: dict[str, str]) -> None:
    english = {n.flat_text() for n in parse(letters_html["en"]).iter() if n.tag in {"th", "dt", "h1", "h2", "li"}}
    for lang in ("uk", "ru", "pl", "de"):
        labels = {n.flat_text() for n in parse(letters_html[lang]).iter() if n.tag in {"th", "dt", "h1", "h2", "li"}}
        assert not labels & english, f"{lang}: untranslated {sorted(labels & english)}"


def test_needs_met_follow_the_household_and_the_offer(letters_html: dict[str, str]) -> None:
    needs = rows_by(parse(letters_html["en"]), "needs", "data-need")
    assert list(needs) == [
        "housing", "kita_u3", "kita_ue3", "school_primary", "school_secondary", "language_course_seats",
        "units_wheelchair", "units_pets_allowed", "medical_services", "job_sectors_shortage", "ukrainian_community",
        "ties", "settlement",
    ]
    assert needs["housing"][1] == "A flat for your household (7 persons) with at least 4 rooms."
    # Word joiners around the dash: an age range never breaks over two lines.
    assert needs["kita_u3"] == ("Childcare (Kita), ages 0\u2060–\u20602", "1 place for your child")
    assert needs["language_course_seats"][1] == "2 seats in an integration course"  # the parent is 76
    assert needs["units_pets_allowed"][1] == "A flat where pets are allowed (dog)."
    # Only the household's own need, not everything the municipality offers; only working-age adults' sectors.
    assert needs["medical_services"][1] == "Available locally: dialysis."
    assert needs["job_sectors_shortage"][1] == "Workers in your occupations are needed here: information technology."
    plain = render_letter_html(make_letter(
        "en", household=make_household(members=(member("head", 1990, "logistics"),), pets="none", medical_needs=(
            "none",), german_level="b1", ties_ags=None, pref_settlement="rural"),
        offer=make_offer(ukrainian_community="none")))
    assert list(rows_by(parse(plain), "needs", "data-need")) == ["housing"]


@pytest.mark.parametrize("lang", LANGS)
def test_plural_forms_follow_the_language(lang: str, letters_html: dict[str, str]) -> None:
    housing = rows_by(parse(letters_html[lang]), "needs", "data-need")["housing"][1]
    assert EXPECTED[lang]["persons"] in housing and EXPECTED[lang]["rooms"] in housing
    single = render_letter_html(make_letter(lang, household=make_household(members=(member("head", 1990),))))
    one = {"uk": ("1 особа", "1 кімната"), "ru": ("1 человек", "1 комната"), "pl": ("1 osoba", "1 pokój"),
           "de": ("1 Person", "1 Zimmer"), "en": ("1 person", "1 room")}[lang]
    text = rows_by(parse(single), "needs", "data-need")["housing"][1]
    assert one[0] in text and one[1] in text


def test_rank_sentence_without_eligible_count() -> None:
    doc = parse(render_letter_html(make_letter("en", eligible_count=None)))
    rank = next(n for n in doc.iter("p") if n.has_class("rank")).flat_text()
    assert rank == ("By your own preferences, this municipality ranks 2 among the municipalities that could take "
                    "your household (1 = best).")
    with_count = parse(render_letter_html(make_letter("en")))
    assert "ranks 2 of the 5 municipalities" in next(n for n in with_count.iter("p") if n.has_class("rank")).flat_text()


@pytest.mark.parametrize("lang", LANGS)
def test_a_look_ahead_term_is_explained_below_the_table_in_the_households_language(lang: str) -> None:
    # Rule: minus points for "places kept for the coming weeks" would read as a penalty for the household; the
    # letter says what they mean, starting with the term's name as the table shows it, and only where they occur.
    doc = parse(render_letter_html(make_letter(lang, terms={"housing": 2.0, "look_ahead": -1.5})))
    label = rows_by(doc, "terms", "data-term")["look_ahead"][0]
    (note,) = [n.flat_text() for n in doc.iter("p") if n.attrs.get("data-note") == "look_ahead"]
    assert note.startswith(label + ": ") and "Re:Match" in note and len(note) > len(label) + 100
    assert (lang == "en") == ("minus points" in note)  # translated, not left in English
    plain = parse(render_letter_html(make_letter(lang, terms={"housing": 2.0})))
    assert not [n for n in plain.iter("p") if n.attrs.get("data-note")]


def test_unknown_score_term_is_shown_by_its_key_not_dropped() -> None:
    doc = parse(render_letter_html(make_letter("de", terms={"housing": 0.5, "novel_term": 1.0, "ties": -0.5})))
    terms = rows_by(doc, "terms", "data-term")
    assert list(terms) == ["novel_term", "housing", "ties"]
    assert terms["novel_term"][0] == "novel_term"


def test_letter_leaves_out_contact_data_and_interview_notes(letters_html: dict[str, str]) -> None:
    hh = make_household()
    for lang, html in letters_html.items():
        text = parse(html).flat_text()
        for secret in (hh.contact_phone, hh.contact_email, hh.notes, "Frau Huber", "huber@muenchen.example"):
            assert secret not in html and secret not in text, (lang, secret)
        assert "oncology" not in text  # offered, but not a need the household declared


def test_mismatched_parts_are_refused() -> None:
    letter = make_letter("en")
    for bad in (replace(letter, assignment=replace(letter.assignment, case_id="RM-OTHER")),
                replace(letter, assignment=replace(letter.assignment, round_id="R-OTHER")),
                replace(letter, assignment=replace(letter.assignment, ags="05315000")),
                replace(letter, round_id="../escape"),
                replace(letter, offer=replace(letter.offer, ags="9162000"))):
        with pytest.raises(ValueError):
            render_letter_html(bad)


# ---------------------------------------------------------------- PDF


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_text_shows_deadline_and_municipality(lang: str, letters_html: dict[str, str]) -> None:
    pdf = render_letter_pdf(letters_html[lang])
    text = re.sub(r"\s+", " ", " ".join(pdf_text(pdf)))  # line wraps and the narrow no-break space of uk dates
    assert EXPECTED[lang]["title"] in text
    assert EXPECTED[lang]["deadline"] in text
    assert "München" in text and "RM-2026-00301" in text
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.root_object["/Lang"] == lang
    assert reader.metadata is not None and EXPECTED[lang]["title"] in (reader.metadata.title or "")


# ---------------------------------------------------------------- injection


def test_free_text_never_becomes_markup_in_letters() -> None:
    name = '<script>alert("x")</script>{{ 7*7 }} %(rank)d =HYPERLINK("http://evil.example","klick")'
    contact = '<img src=x onerror="alert(1)">=HYPERLINK("http://evil.example") {% if 1 %}yes{% endif %}'
    case_id = '=1+1<b>RM-{{ 7*7 }}</b>'
    notes = '<script>steal()</script>=cmd|" /C calc"!A0 {{ 7*7 }}'
    greeted = '<b onmouseover="x()">Olena</b> {{ 7*7 }} %(rank)d'
    hh = make_household(case_id, notes=notes, contact_name=greeted)
    offer = make_offer(municipality_name=name, contact_name="<script>x()</script>")
    html = render_letter_html(make_letter("uk", household=hh, offer=offer, coordination_contact=contact))
    doc = parse(html)
    assert not {n.tag for n in doc.iter()} & {"script", "img", "b"}
    assert "<script" not in html and "<img" not in html
    text = doc.flat_text()
    assert "49" not in text and "yes" not in text.replace(contact, "")  # nothing was evaluated as a template
    assert [n.flat_text() for n in doc.iter("dd") if n.has_class("municipality-name")] == [name]
    assert doc.iter("h1")[0].flat_text() == f"Пропозиція житла: {name}"
    assert [n.flat_text() for n in doc.iter("strong") if n.has_class("case-id")] == [case_id]
    assert next(n for n in doc.iter("p") if n.has_class("greeting")).flat_text() == f"Доброго дня, {greeted}!"
    assert next(n for n in doc.iter("p") if n.has_class("contact")).flat_text() == f"Координаційна команда: {contact}"
    assert "steal()" not in html  # interview notes are not part of the letter at all
    pages = "\n".join(pdf_text(render_letter_pdf(html)))
    assert '<script>alert("x")</script>' in pages and "{{ 7*7 }}" in pages


# ---------------------------------------------------------------- files and determinism


def test_letter_file_names_use_only_pseudonym_round_and_language(tmp_path: Path) -> None:
    letter = make_letter("de")
    files = write_letter(letter, tmp_path)
    stem = f"letters/{ROUND}/offer_{letter.pseudonym}_{ROUND}_de"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        f"{stem}.html", f"{stem}.pdf",
    ]
    assert files.html_path.relative_to(tmp_path).as_posix() == f"{stem}.html"
    assert files.pdf_path.read_bytes().startswith(b"%PDF-")
    for bad_round in ("../escape", "R/1", "", "..", "R 1"):
        with pytest.raises(ValueError):
            write_letter(replace(letter, round_id=bad_round, assignment=replace(letter.assignment, round_id=bad_round)),
                         tmp_path)


def test_same_input_gives_identical_html_and_pdf(tmp_path: Path) -> None:
    first = write_letter(make_letter("uk"), tmp_path / "a")
    second = write_letter(make_letter("uk"), tmp_path / "b")
    assert first.html_path.read_bytes() == second.html_path.read_bytes()
    assert first.pdf_path.read_bytes() == second.pdf_path.read_bytes()
    assert (first.html_sha256, first.pdf_sha256) == (second.html_sha256, second.pdf_sha256)
    pdf = first.pdf_path.read_bytes()
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf


# ---------------------------------------------------------------- the round's letters in the outbox

CASES = {"RM-L-1": "uk ru", "RM-L-2": "de en", "RM-L-3": "pl", "RM-L-4": "ru"}
SECRET_PHONE, SECRET_MAIL, SECRET_NOTE = "+48 611 222 333", "olena@example.org", "Sister lives in Lviv; trauma."


def _seed_offered_round(settings: Settings) -> str:
    offer = x.offer("OF-1", places_persons="8", units_1_room="4", valid_from="2026-10-01", valid_until="2027-03-31")
    store_records(settings, [{**x.household(case_id, languages=langs, contact_phone=SECRET_PHONE,
                                            contact_email=SECRET_MAIL, notes=SECRET_NOTE),
                              "_submission_time": "2026-11-02T10:15:00"} for case_id, langs in CASES.items()],
                  {case_id: x.family("head") for case_id in CASES}, [offer])
    summary = run_round(settings, load_policy(), ROUND_DATE)
    assert offer_round(settings, summary.round_id) == len(CASES)
    return summary.round_id


def _letter_rows(settings: Settings) -> list[Any]:
    with get_engine(settings.database_url).connect() as conn:
        return list(conn.execute(select(t.letters).order_by(t.letters.c.case_id, t.letters.c.version)))


def _audit(settings: Settings) -> list[Any]:
    with get_engine(settings.database_url).connect() as conn:
        return list(conn.execute(select(t.audit_events).where(t.audit_events.c.event == "letter_rendered")))


def _outbox_files(settings: Settings) -> dict[str, bytes]:
    root = settings.outbox / "letters"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rerendering_round_letters_is_idempotent_and_a_changed_letter_is_a_new_version(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    policy = load_policy()
    round_id = _seed_offered_round(settings)
    decide(settings, "RM-L-4", round_id, "decline", decided_at=datetime(2026, 11, 24, 9, tzinfo=UTC))

    first = render_round_letters(settings, policy, round_id)
    assert {r["case_id"]: r["language"] for r in first} == {"RM-L-1": "uk", "RM-L-2": "en", "RM-L-3": "pl"}
    assert all(r["new"] and r["version"] == 1 for r in first)  # the declined household gets no letter
    files = _outbox_files(settings)
    assert sorted(files) == sorted(
        f"{round_id}/offer_{pseudonym(c, settings.pseudonym_salt)}_{round_id}_{lang}.{ext}"
        for c, lang in (("RM-L-1", "uk"), ("RM-L-2", "en"), ("RM-L-3", "pl")) for ext in ("html", "pdf"))

    again = render_round_letters(settings, policy, round_id)
    assert not any(r["new"] for r in again) and [r["version"] for r in again] == [1, 1, 1]
    assert len(_letter_rows(settings)) == 3 and len(_audit(settings)) == 3
    assert _outbox_files(settings) == files

    # A changed letter (the coordination team's contact) becomes version 2; version 1 stays, renamed.
    settings = replace(settings, coordination_contact="Neues Team, neu@rematch.example")
    changed = render_round_letters(settings, policy, round_id)
    assert all(r["new"] and r["version"] == 2 for r in changed)
    now = _outbox_files(settings)
    for name, data in files.items():
        stem, ext = name.rsplit(".", 1)
        assert now[f"{stem}_v1.{ext}"] == data  # the old version is kept byte for byte
        assert now[name] != data
    rows = _letter_rows(settings)
    assert [(r.case_id, r.version) for r in rows] == [(c, v) for c in ("RM-L-1", "RM-L-2", "RM-L-3") for v in (1, 2)]
    for r in rows:
        assert (settings.home / r.html_path).is_file() and (settings.home / r.pdf_path).is_file()
        assert (r.version == 1) == r.html_path.endswith("_v1.html")
    assert len(render_round_letters(settings, policy, round_id)) == 3 and len(_letter_rows(settings)) == 6

    events = _audit(settings)
    assert len(events) == 6
    for e in events:
        assert e.subject.split("/")[1].startswith("H") and set(e.details) == {
            "version", "language", "html_sha256", "pdf_sha256"}
    logged = " ".join(str(e.details) + e.subject for e in events) + caplog.text
    for secret in (*CASES, SECRET_PHONE, SECRET_MAIL, SECRET_NOTE):
        assert secret not in logged, secret


def test_household_language_change_writes_a_new_letter_and_keeps_the_old(settings: Settings, tmp_path: Path) -> None:
    policy = load_policy()
    round_id = _seed_offered_round(settings)
    render_round_letters(settings, policy, round_id)
    with get_engine(settings.database_url).begin() as conn:
        conn.execute(update(t.households).where(t.households.c.case_id == "RM-L-1").values(languages="de"))
    result = {r["case_id"]: r for r in render_round_letters(settings, policy, round_id)}
    assert [c for c, r in result.items() if r["new"]] == ["RM-L-1"]
    assert result["RM-L-1"]["version"] == 2 and result["RM-L-1"]["language"] == "de"
    alias = pseudonym("RM-L-1", settings.pseudonym_salt)
    names = set(_outbox_files(settings))
    assert {f"{round_id}/offer_{alias}_{round_id}_uk_v1.html", f"{round_id}/offer_{alias}_{round_id}_de.pdf"} <= names
    assert f"{round_id}/offer_{alias}_{round_id}_uk.html" not in names
    html = Path(result["RM-L-1"]["html_path"]).read_text(encoding="utf-8")
    assert parse(html).iter("html")[0].attrs.get("lang") == "de"


@pytest.mark.parametrize(("value", "refused"), [
    ("Re:Match Koordinationsteam", True),
    ("", True),  # unset: the default, a name only
    ("Re:Match Koordinationsteam (seit 2023-01-01)", True),  # a date is no phone number
    ("Re:Match Koordinationsteam, team@rematch.example", False),
    ("Re:Match Koordinationsteam, +49 30 1234 5678", False),
])
def test_packets_and_letters_are_not_rendered_with_a_contact_nobody_can_reach(
        value: str, refused: bool, tmp_path: Path) -> None:
    # Letters tell households to answer the coordination team: a name alone gives them no way to.
    env = {"REMATCH_HOME": str(tmp_path), **({"REMATCH_COORDINATION_CONTACT": value} if value else {})}
    settings = load_settings(env)
    if refused:
        with pytest.raises(UnreachableContact,
                           match="No packet or letter was rendered: .*`rematch config set coordination_contact"):
            reachable_contact(settings)
    else:
        assert reachable_contact(settings) == value


def test_letters_printed_in_worker_processes_are_those_printed_in_one(settings: Settings, tmp_path: Path) -> None:
    """Rule: the CLI's process pool changes how fast letters print, never what they say or how they are recorded."""
    policy = load_policy()
    round_id = _seed_offered_round(settings)
    pooled = render_round_letters(settings, policy, round_id, workers=2)
    assert [(r["case_id"], r["version"], r["new"]) for r in pooled] == [
        (c, 1, True) for c in ("RM-L-1", "RM-L-2", "RM-L-3", "RM-L-4")]
    files = _outbox_files(settings)
    for letter in round_letter_inputs(settings, policy, round_id):  # the same letters printed here, in this process
        one = write_letter(letter, tmp_path)
        assert files[f"{round_id}/{one.pdf_path.name}"] == one.pdf_path.read_bytes()
        assert files[f"{round_id}/{one.html_path.name}"] == one.html_path.read_bytes()
    again = render_round_letters(settings, policy, round_id)  # in one process: the ledger already holds them all
    assert not any(r["new"] for r in again) and len(_letter_rows(settings)) == 4 and len(_audit(settings)) == 4
    assert _outbox_files(settings) == files


def test_letters_of_chosen_households_only(settings: Settings) -> None:
    """Rule: a batch of letters (Airflow maps over batches) renders exactly the households it names."""
    round_id = _seed_offered_round(settings)
    batch = render_round_letters(settings, load_policy(), round_id, case_ids=["RM-L-3", "RM-L-1", "RM-NOT-HERE"])
    assert [r["case_id"] for r in batch] == ["RM-L-1", "RM-L-3"]
    assert [r.case_id for r in _letter_rows(settings)] == ["RM-L-1", "RM-L-3"]


def test_sample_writes_the_packet_and_one_letter_per_language_unversioned(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rule: `packets render --sample AGS` gives a person the municipality's packet and a letter in every language to
    look at, without making a version, a delivery or a file in the outbox, recorded in the audit trail; the letters
    are of a household that does not exist, so no household's details are copied into other languages."""
    from rematch_pipeline.cli import main

    round_id = _seed_offered_round(settings)
    out = tmp_path / "sample"
    assert main(["packets", "render", round_id, "--sample", "09162000", "--out", str(out)], settings) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    letters = [p for p in written if p.startswith("letters/") and p.endswith(".pdf")]
    assert len([p for p in written if p.startswith("09162000/")]) == 2  # the packet, HTML and PDF
    assert sorted(Path(p).stem.rsplit("_", 1)[1] for p in letters) == sorted(available_languages())
    for path in letters:
        assert Path(path).stem.split("_")[1] == "SAMPLE"
        assert PdfReader(out / path).trailer["/Root"]["/Lang"] == Path(path).stem.rsplit("_", 1)[1]
        text = (out / path).with_suffix(".html").read_text(encoding="utf-8")
        for secret in (*CASES, SECRET_PHONE, SECRET_MAIL, SECRET_NOTE):
            assert secret not in text
    assert set(capsys.readouterr().out.split()) >= {str(out / p) for p in written}
    assert not _letter_rows(settings) and not (settings.outbox / "letters").exists()
    with get_engine(settings.database_url).connect() as conn:
        events = list(conn.execute(select(t.audit_events).where(t.audit_events.c.event == "sample_rendered")))
    assert [(e.subject, e.details["languages"]) for e in events] == [
        (f"{round_id}/09162000", list(available_languages()))]


@pytest.mark.parametrize(("argv", "says"), [
    (["--sample", "01001000"], "placed no household in municipality 01001000: there is no packet to sample "
                               "(municipalities with households in this round: 09162000"),
    (["--sample", ""], "8 digits"),  # an unset shell variable: never the whole round instead
    (["--sample", "../../etc"], "8 digits"),
    (["--sample", "09162000", "--out", "{outbox}"], "outside REMATCH_HOME"),  # would mix with the round's versions
    (["--out", "{tmp}/x"], "--out is where --sample writes"),
])
def test_sample_refusals_are_one_plain_line_and_write_nothing(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    from rematch_pipeline.cli import main

    round_id = _seed_offered_round(settings)
    argv = [a.format(outbox=settings.outbox, tmp=tmp_path) for a in argv]
    before = sorted(p for p in settings.home.rglob("*") if p.is_file() and p.suffix in (".html", ".pdf"))
    assert main(["packets", "render", round_id, *argv], settings) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p for p in settings.home.rglob("*") if p.is_file() and p.suffix in (".html", ".pdf")) == before
    assert not (tmp_path / "x").exists() and not _letter_rows(settings)


def test_letter_batches_cover_every_household_of_the_round_exactly_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: the packets DAG maps letters over batches that together hold each household of the round once, named by
    pseudonym ranges (never case ids), and every batch renders and delivers only its own households."""
    from rematch_pipeline import orchestration

    monkeypatch.setattr(orchestration, "LETTER_BATCH", 3)
    round_id = _seed_offered_round(settings)
    batches = orchestration.letter_batches([round_id, "R-NO-OFFERS"])
    aliases = sorted(pseudonym(c, settings.pseudonym_salt) for c in CASES)
    assert batches == [{"round_id": round_id, "from": "", "before": aliases[3]},
                       {"round_id": round_id, "from": aliases[3], "before": None},
                       {"round_id": "R-NO-OFFERS", "from": "", "before": None}]  # a round without offers: one batch
    assert not any(c in str(batches) for c in CASES)
    done = [orchestration.letters_in_batch(b["round_id"], b["from"], b["before"]) for b in batches[:2]]
    assert [(d["letters"], d["new"], d["delivered"]) for d in done] == [(3, 3, 3), (1, 1, 1)]
    assert sorted(r.case_id for r in _letter_rows(settings)) == sorted(CASES)
    again = orchestration.letters_in_batch(round_id, "", None)  # a retry of everything: nothing new, nothing resent
    assert (again["letters"], again["new"], again["delivered"]) == (4, 0, 0)


def test_a_letter_that_fails_in_a_worker_leaves_the_others_recorded_or_untouched(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: rendering in processes records each document as it comes back: one that cannot be printed stops the run
    with every letter before it recorded (files in place) and every one after it as it was (its earlier version at
    its recorded path, not shelved), so delivery never finds a recorded version without its files."""
    from rematch_pipeline.packets import letters as letters_module

    policy = load_policy()
    round_id = _seed_offered_round(settings)
    render_round_letters(settings, policy, round_id, workers=2)
    changed = replace(settings, coordination_contact="Neues Team, neu@rematch.example")  # every letter changes
    bad = pseudonym("RM-L-3", settings.pseudonym_salt)
    original = letters_module.round_letter_inputs

    def with_one_unprintable(*args: Any, **kwargs: Any) -> list[LetterInput]:
        # A letter that cannot reach its render process (its notes, which no letter shows, cannot be pickled): the
        # pool reports it at its place in the order, as it does a letter that fails to print there.
        return [replace(x, household=replace(x.household, notes=lambda: None)) if x.pseudonym == bad else x
                for x in original(*args, **kwargs)]

    monkeypatch.setattr(letters_module, "round_letter_inputs", with_one_unprintable)
    with pytest.raises(Exception, match="pickle"):
        render_round_letters(changed, policy, round_id, workers=2)
    rows = _letter_rows(settings)
    latest = {r.case_id: r for r in rows}  # ordered by version: the last one wins
    assert {c: r.version for c, r in latest.items()} == {"RM-L-1": 2, "RM-L-2": 2, "RM-L-3": 1, "RM-L-4": 1}
    for r in rows:  # every recorded version, the earlier ones shelved under their versioned names, has its files
        assert (settings.home / r.html_path).is_file() and (settings.home / r.pdf_path).is_file(), r.html_path
    assert not list(settings.outbox.glob(".render-*"))  # the processes' scratch folder is gone


def test_a_printer_failure_is_one_plain_line_without_the_documents_text(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Rule: when Typst refuses a document, its message (which quotes the document's text) never reaches the
    operator's screen; one plain line says what to do."""
    import typst

    from rematch_pipeline.cli import main
    from rematch_pipeline.packets import letters as letters_module

    round_id = _seed_offered_round(settings)

    def refuse(html: str) -> bytes:
        raise typst.TypstError(f"the text {SECRET_NOTE!r} could not be displayed")

    monkeypatch.setattr(letters_module, "render_letter_pdf", refuse)
    assert main(["packets", "render", round_id, "--workers", "1"], settings) == 2
    err = capsys.readouterr().err
    assert "could not be printed to PDF" in err and err.count("\n") == 1
    assert SECRET_NOTE not in err and "Traceback" not in err


def test_rendering_again_names_only_new_documents_and_counts_the_unchanged(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Rule: `packets render` run again on an unchanged round prints counts, not a line per letter."""
    from rematch_pipeline.cli import main

    round_id = _seed_offered_round(settings)
    assert main(["packets", "render", round_id, "--workers", "1"], settings) == 0
    first = capsys.readouterr().out
    assert " new: " in first and "unchanged" not in first and "no letter" not in first
    assert main(["packets", "render", round_id, "--workers", "1"], settings) == 0
    again = capsys.readouterr().out.splitlines()
    assert len(again) == 2 and re.fullmatch(r"\d+ packets? unchanged \(under .+\)", again[0]), again
    assert re.fullmatch(r"\d+ letters? unchanged \(under .+\)", again[1]), again


def test_rendering_says_how_many_offers_get_no_letter(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Rule: a declined offer's letter is not rendered again; the output says so, so it is not taken for a lost one."""
    from rematch_pipeline.cli import main

    round_id = _seed_offered_round(settings)
    decide(settings, "RM-L-4", round_id, "decline", decided_at=datetime(2026, 11, 24, 9, tzinfo=UTC))
    assert main(["packets", "render", round_id, "--workers", "1"], settings) == 0
    assert "1 offer declined, expired or withdrawn: no letter" in capsys.readouterr().out.splitlines()
