"""Tests of the letters' languages: Russian and Polish, greeting and casing, exonyms, arrival window, packet line."""

from __future__ import annotations

import re

import pytest
from babel.dates import format_date

from rematch_pipeline import glossary
from rematch_pipeline.packets.exonyms import EXONYMS, local_name
from rematch_pipeline.packets.letters import (
    FORMAT_LOCALES,
    SCORE_TERMS,
    letter_language,
    render_letter_html,
    translations,
)
from rematch_pipeline.packets.render import arrival_window, render_packet_html
from rematch_pipeline.scenario import _CITY_STATES, PILOT_CITIES
from tests import test_packets as packets
from tests.html_tree import Node, parse
from tests.test_letters import LANGS, RESPOND_BY, make_household, make_letter, make_offer

# Where a letter's text goes on after the greeting's comma in lower case; elsewhere it starts a new sentence.
LOWER_AFTER_GREETING = {"de"}
EXACT_DATE = {
    "uk": "Точну дату вам повідомить громада.", "ru": "Точную дату вам сообщит муниципалитет.",
    "pl": "Dokładną datę poda Państwu gmina.", "de": "Den genauen Tag teilt Ihnen die Kommune mit.",
    "en": "The municipality will tell you the exact date.",
}
_CYRILLIC_NAME = re.compile(r"[\u0400-\u04ffʼ' -]+")


def letter_doc(lang: str, **kw: object) -> Node:
    return parse(render_letter_html(make_letter(lang, **kw)))  # type: ignore[arg-type]


def paragraph(doc: Node, cls: str) -> str:
    return next(p for p in doc.iter("p") if p.has_class(cls)).flat_text()


# ---------------------------------------------------------------- language choice


def test_a_household_speaking_only_russian_gets_its_letter_in_russian() -> None:
    hh = make_household(languages=("ru",))
    assert letter_language(hh) == "ru"
    doc = letter_doc(letter_language(hh), household=hh)
    assert doc.iter("html")[0].attrs.get("lang") == "ru"
    assert paragraph(doc, "greeting") == "Здравствуйте!"
    assert doc.iter("h1")[0].flat_text() == "Предложение жилья: Мюнхен"
    polish = make_household(languages=("pl", "other"))
    assert letter_language(polish) == "pl"
    assert paragraph(letter_doc("pl", household=polish), "greeting") == "Szanowni Państwo,"


def test_the_packet_names_the_language_of_each_households_letter() -> None:
    spoken = {"RM-2026-00401": (("ru",), "Russisch"), "RM-2026-00402": (("uk", "ru"), "Ukrainisch"),
              "RM-2026-00403": (("pl", "other"), "Polnisch"), "RM-2026-00404": (("other",), "Ukrainisch"),
              "RM-2026-00405": (("de", "en"), "Englisch")}
    entries = [packets.entry(packets.make_household(case_id, languages=langs), accepted=False)
               for case_id, (langs, _) in spoken.items()]
    doc = parse(render_packet_html(packets.make_packet(*entries)))
    for ph in entries:
        section = packets.section_of(doc, ph)
        line = [n.flat_text() for n in section.iter("dd") if n.has_class("letter-language")]
        assert line == [f"auf {spoken[ph.household.case_id][1]}"], ph.pseudonym
        assert "Angebotsschreiben auf " + spoken[ph.household.case_id][1] in section.flat_text()


# ---------------------------------------------------------------- greeting and casing


@pytest.mark.parametrize("lang", LANGS)
def test_greeting_is_neutral_and_the_opening_continues_it_in_the_languages_case(lang: str) -> None:
    doc = letter_doc(lang)
    greeting, opening = paragraph(doc, "greeting"), paragraph(doc, "opening")
    assert "RM-2026-00301" not in greeting  # no case number: the household is greeted, not its file
    if lang in LOWER_AFTER_GREETING:
        assert greeting.endswith(",") and opening[0].islower(), (greeting, opening)
    else:
        assert opening[0].isupper(), (greeting, opening)


# A neutral form with the name: the letter does not know the sex of who reads it, so no "Liebe Frau".
NAMED_GREETING = {"uk": "Доброго дня, Olena Kovalenko!", "ru": "Здравствуйте, Olena Kovalenko!",
                  "pl": "Dzień dobry, Olena Kovalenko,", "de": "Guten Tag, Olena Kovalenko,",
                  "en": "Dear Olena Kovalenko,"}


@pytest.mark.parametrize("lang", LANGS)
def test_a_household_that_gave_its_name_is_greeted_by_it_and_the_opening_goes_on_as_after_the_neutral_one(
        lang: str) -> None:
    named = letter_doc(lang, household=make_household(contact_name="Olena Kovalenko"))
    neutral = letter_doc(lang)
    assert paragraph(named, "greeting") == NAMED_GREETING[lang]
    # It ends as the neutral greeting ends, so the opening (lower case after a German comma) reads on the same way.
    assert paragraph(named, "greeting")[-1] == paragraph(neutral, "greeting")[-1]
    assert paragraph(named, "opening") == paragraph(neutral, "opening")
    assert "Olena Kovalenko" not in paragraph(neutral, "greeting")


def test_german_letter_goes_on_after_guten_tag_in_lower_case() -> None:
    doc = letter_doc("de")
    assert paragraph(doc, "greeting") == "Guten Tag,"
    assert paragraph(doc, "opening").startswith("wir freuen uns, Ihrem Haushalt eine Unterkunft in München")


@pytest.mark.parametrize("lang", LANGS)
def test_no_sentence_ends_in_a_doubled_full_stop(lang: str) -> None:
    # A long date ends in an abbreviation in uk and ru ("р.", "г."): no sentence may end right after one.
    text = re.sub(r"\s+", " ", letter_doc(lang).iter("body")[0].text())
    assert not re.search(r"\.\s?\.", text), re.findall(r".{40}\.\s?\..{0,10}", text)


# ---------------------------------------------------------------- municipality names


def test_a_ukrainian_letter_writes_muenchen_in_cyrillic_with_the_german_name_beside() -> None:
    doc = letter_doc("uk")
    assert doc.iter("h1")[0].flat_text() == "Пропозиція житла: Мюнхен"
    assert "громаді Мюнхен" in paragraph(doc, "opening")
    name = next(n for n in doc.iter("dd") if n.has_class("municipality-name"))
    assert name.text() == "Мюнхен (München)"
    assert [(s.attrs.get("lang"), s.text()) for s in name.iter("span")] == [("de", "München")]
    assert "München" not in doc.by_id("after-accepting").flat_text()
    assert letter_doc("pl").iter("h1")[0].flat_text() == "Propozycja zakwaterowania: Monachium"
    german = next(n for n in letter_doc("de").iter("dd") if n.has_class("municipality-name"))
    assert german.text() == "München" and not german.iter("span")


@pytest.mark.parametrize(("ags", "name", "lang", "expected"), [
    ("09162000", "München", "uk", "Мюнхен"), ("09162000", "München", "ru", "Мюнхен"),
    ("09162000", "München", "pl", "Monachium"), ("01002000", "Kiel", "ru", "Киль"),
    ("05111000", "Düsseldorf", "pl", "Düsseldorf"),  # no Polish exonym: the German name
    ("09162000", "München", "de", "München"), ("09162000", "München", "en", "München"),
    ("09162000", "Landeshauptstadt München", "uk", "Landeshauptstadt München"),  # another name: kept as sent
    ("12345678", "Gemeinde 12345678", "uk", "Gemeinde 12345678"),  # not in the table: kept
])
def test_local_name_uses_the_exonym_only_where_the_table_knows_the_municipality(
        ags: str, name: str, lang: str, expected: str) -> None:
    assert local_name(ags, name, lang) == expected


def test_exonym_table_covers_the_default_scenarios_in_cyrillic() -> None:
    default = {ags: name for ags, name, *_ in PILOT_CITIES}
    default |= {ags: name for cities in _CITY_STATES.values() for ags, name, _ in cities}
    assert {ags: german for ags, (german, _) in EXONYMS.items()} == default
    for ags, (german, names) in EXONYMS.items():
        for lang in ("uk", "ru"):
            assert _CYRILLIC_NAME.fullmatch(names[lang]), (ags, lang)
        assert names.get("pl", "Polish exonym") != german, (ags, "a Polish entry equal to the German name")


def test_an_unknown_municipality_keeps_its_german_name_in_every_language() -> None:
    other = make_offer(ags="05315000", municipality_name="Köln-Test", offer_id="OF-0002")
    for lang in LANGS:
        doc = letter_doc(lang, offer=other)
        assert [n.text() for n in doc.iter("dd") if n.has_class("municipality-name")] == ["Köln-Test"], lang


# ---------------------------------------------------------------- arrival and next steps


@pytest.mark.parametrize("lang", LANGS)
def test_letter_states_the_packets_arrival_window_and_the_next_steps(lang: str) -> None:
    doc = letter_doc(lang)
    start, end = arrival_window(RESPOND_BY)
    arrival = doc.by_id("arrival-window")
    assert [t.attrs.get("datetime") for t in arrival.iter("time")] == [start.isoformat(), end.isoformat()]
    text = arrival.flat_text()
    for day in (start, end):
        assert re.sub(r"\s+", " ", format_date(day, format="long", locale=FORMAT_LOCALES.get(lang, lang))) in text
    assert text.endswith(EXACT_DATE[lang])
    facts = [t.attrs.get("datetime") for t in doc.by_id("key-facts").iter("time") if t.has_class("arrival")]
    assert facts == [start.isoformat(), end.isoformat()]
    steps = next(n for n in doc.iter("ol") if n.has_class("next-steps")).iter("li")
    assert len(steps) == 4 and all(li.flat_text() for li in steps)


# ---------------------------------------------------------------- German words


def test_german_letter_names_each_concept_with_the_glossarys_term() -> None:
    de = translations("de").gettext
    for key in set(SCORE_TERMS) & set(glossary.SCORE_TERMS):
        assert de(SCORE_TERMS[key]).startswith(glossary.SCORE_TERMS[key].de), key
    # The needs the packet's caseworker reads under the same words: one term per concept for both readers.
    same_concept = {
        "German course": glossary.DIMENSIONS["language_course_seats"].de,
        "Accessible flat": glossary.DIMENSIONS["units_wheelchair"].de,
        "Medical care": glossary.MEDICAL_NEED.de,
        "Type of place": "Siedlungstyp",
    }
    assert {msgid: de(msgid) for msgid in same_concept} == same_concept
    doc = letter_doc("de", household=make_household(languages=("de",)))
    assert "Angehörige oder Freunde" not in doc.flat_text()


@pytest.mark.parametrize(("lang", "waiting_list"), [("de", "Warteliste"), ("en", "waiting list")])
def test_letter_speaks_of_the_waiting_list_not_the_pool(lang: str, waiting_list: str) -> None:
    # "Pool" is the team's word for the households not yet placed; a household knows a waiting list.
    text = letter_doc(lang).flat_text()
    assert not re.search(r"\bpool\b", text, flags=re.IGNORECASE)
    assert waiting_list in text
