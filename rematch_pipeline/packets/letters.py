"""Offer letter per household in its own language (gettext catalogues managed with Babel), as HTML and PDF."""

from __future__ import annotations

import gettext
import hashlib
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from jinja2 import Environment

from rematch_pipeline.config import Settings, reachable_contact
from rematch_pipeline.contract import AGS_RE, LANGUAGES, MEDICAL_SERVICES, OCCUPATIONS
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import Assignment, CapacityOffer, Household, Policy, ages_on, demand_of, pseudonym
from rematch_pipeline.packets.exonyms import local_name
from rematch_pipeline.packets.render import (
    _ROUND_ID_RE,
    arrival_window,
    document_environment,
    render_packet_pdf,
    write_atomic,
)
from rematch_pipeline.packets.versions import DocumentKind, Files, files_not_as_recorded, render_all, restore
from rematch_pipeline.repository import Ledger, reading, require_round, unit_of_work

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "offer_letter.html.j2"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "uk"
LETTER_STATUSES = ("pending", "accepted")  # expired and declined offers get no letter

_LANGUAGE_RE = re.compile(r"[a-z]{2,3}(?:_[A-Z][A-Za-z]{1,3})?")
_PSEUDONYM_RE = re.compile(r"[A-Za-z0-9]{1,32}")


def N_(message: str) -> str:
    """Mark a message for extraction only; it is translated when a letter is rendered in its language."""
    return message


# Labels are English msgids; each letter translates them through its language's catalogue.
STATE_NAMES = {
    "SH": N_("Schleswig-Holstein"), "HH": N_("Hamburg"), "NI": N_("Lower Saxony"), "HB": N_("Bremen"),
    "NW": N_("North Rhine-Westphalia"), "HE": N_("Hesse"), "RP": N_("Rhineland-Palatinate"),
    "BW": N_("Baden-Württemberg"), "BY": N_("Bavaria"), "SL": N_("Saarland"), "BE": N_("Berlin"),
    "BB": N_("Brandenburg"), "MV": N_("Mecklenburg-Western Pomerania"), "SN": N_("Saxony"),
    "ST": N_("Saxony-Anhalt"), "TH": N_("Thuringia"),
}
# The German name goes next to a translated one: it is the name the household will see on signs and forms.
STATE_NAMES_DE = {
    "SH": "Schleswig-Holstein", "HH": "Hamburg", "NI": "Niedersachsen", "HB": "Bremen", "NW": "Nordrhein-Westfalen",
    "HE": "Hessen", "RP": "Rheinland-Pfalz", "BW": "Baden-Württemberg", "BY": "Bayern", "SL": "Saarland",
    "BE": "Berlin", "BB": "Brandenburg", "MV": "Mecklenburg-Vorpommern", "SN": "Sachsen", "ST": "Sachsen-Anhalt",
    "TH": "Thüringen",
}
SETTLEMENT_TYPES = {
    "big_city": N_("big city"), "mid_city": N_("medium-sized town"), "small_town": N_("small town"),
    "rural": N_("rural area"),
}
COMMUNITY_SIZES = {"none": N_("none reported"), "small": N_("small"), "large": N_("large")}
MEDICAL_SERVICE_NAMES = {
    "dialysis": N_("dialysis"), "oncology": N_("cancer care (oncology)"), "psychotherapy": N_("psychotherapy"),
    "paediatric_specialist": N_("paediatric specialist care"), "diabetes_care": N_("diabetes care"),
}
OCCUPATION_SECTORS = {
    "health_care": N_("health care and nursing"), "education": N_("education and childcare"),
    "it": N_("information technology"), "engineering": N_("engineering"), "construction": N_("construction"),
    "hospitality": N_("hotels and restaurants"), "manufacturing": N_("manufacturing"), "logistics": N_("logistics"),
    "agriculture": N_("agriculture"), "retail": N_("retail"), "public_admin": N_("public administration"),
}
PET_NAMES = {"cat": N_("cat"), "dog": N_("dog"), "other": N_("pet")}
# The solver's score terms (matching/scoring.py); an unknown term is shown by its key, never dropped.
SCORE_TERMS = {
    "work": N_("Work: local demand for your occupations"),
    "education": N_("Education: childcare and school places"),
    "community": N_("Ukrainian community"),
    "healthcare": N_("Medical services"),
    "housing": N_("Housing"),
    "culture": N_("Culture and city life"),
    "settlement": N_("The type of place you prefer"),
    "ties": N_("Relatives or friends nearby"),
    "ties_same_municipality": N_("Relatives or friends in this municipality"),
    "ties_same_kreis": N_("Relatives or friends in this district"),
    "municipality_interest": N_("The municipality's interest in households like yours"),
    "waiting": N_("Priority for the weeks you have waited for a place"),
    "look_ahead": N_("Places kept for households arriving in the coming weeks"),
    "fairness": N_("Balance between municipalities"),
    "preference": N_("Your own preferences"),
}
# Dates and numbers as read where the letter's readers are: English in Europe ("11 December 2026", not US order).
FORMAT_LOCALES = {"en": "en_GB"}
_SHOWN_POINTS = 0.005  # terms that round to 0.00 points explain nothing and are left out


@dataclass(frozen=True)
class LetterInput:
    round_id: str
    round_date: date
    household: Household
    assignment: Assignment
    offer: CapacityOffer
    respond_by: date
    language: str
    coordination_contact: str
    policy: Policy
    pseudonym: str  # names the letter's files and log lines
    eligible_count: int | None = None  # municipalities the household was eligible for, when known


@dataclass(frozen=True)
class LetterFiles:
    html_path: Path
    pdf_path: Path
    html_sha256: str
    pdf_sha256: str


# ---------------------------------------------------------------- languages and catalogues


def available_languages(locale_dir: Path = LOCALE_DIR) -> tuple[str, ...]:
    """Languages with a catalogue (`<lang>/LC_MESSAGES/messages.po`): adding a catalogue adds a language."""
    if not locale_dir.is_dir():
        return ()
    return tuple(sorted(
        p.name for p in locale_dir.iterdir()
        if _LANGUAGE_RE.fullmatch(p.name) and (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    ))


def letter_language(household: Household, available: Iterable[str] | None = None) -> str:
    """The letter's language: the first language the household speaks that has a catalogue, else Ukrainian.

    Languages are tried in the data contract's order (uk ru en de pl other), so Ukrainian wins whenever the
    household speaks it and a household speaking only Russian gets Russian; one speaking only languages without a
    catalogue (today `other`) gets the default, Ukrainian. A catalogue added later is picked up without code changes.
    """
    have = set(available_languages() if available is None else available)
    spoken = [code for code in LANGUAGES if code in household.languages]
    spoken += sorted(set(household.languages) - set(LANGUAGES))
    return next((code for code in spoken if code in have), DEFAULT_LANGUAGE)


@lru_cache(maxsize=32)
def _translations(language: str, locale_dir: Path = LOCALE_DIR) -> gettext.GNUTranslations:
    # Compiled in memory from the .po file: no compiled .mo files are kept in the repository.
    po_path = locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not _LANGUAGE_RE.fullmatch(language) or not po_path.is_file():
        raise ValueError(f"no catalogue for language {language!r}")
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # fuzzy entries are left out, as gettext would
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def translations(language: str) -> gettext.GNUTranslations:
    """The language's messages, compiled once per process from its .po catalogue."""
    return _translations(language)


@lru_cache(maxsize=32)
def _environment(language: str) -> Environment:
    env = document_environment(TEMPLATE_DIR, extensions=("jinja2.ext.i18n",))
    # Newstyle gettext escapes every %(name)s argument under autoescape: free text cannot become markup.
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


# ---------------------------------------------------------------- the letter's view


def validate_letter(letter: LetterInput) -> None:
    """Refuse a letter whose parts do not belong together, or that would give an unsafe file name."""
    a, hh, offer = letter.assignment, letter.household, letter.offer
    if not _ROUND_ID_RE.fullmatch(letter.round_id) or ".." in letter.round_id:
        raise ValueError(f"round id {letter.round_id!r} is not usable in a file name")
    if not AGS_RE.fullmatch(offer.ags):
        raise ValueError(f"offer {offer.offer_id}: AGS must be exactly 8 digits")
    if a.round_id != letter.round_id:
        raise ValueError("assignment belongs to another round")
    if a.case_id != hh.case_id:
        raise ValueError("assignment does not belong to this household")
    if a.ags != offer.ags or (a.offer_id and a.offer_id != offer.offer_id):
        raise ValueError("assignment names another municipality or offer")
    if letter.language not in available_languages():
        raise ValueError(f"no catalogue for language {letter.language!r}")


def _needs_met(letter: LetterInput, tr: gettext.GNUTranslations) -> list[dict[str, str]]:
    """What the municipality offers that matches this household's own needs, one row per need."""
    _, ngettext = tr.gettext, tr.ngettext
    hh, offer, policy = letter.household, letter.offer, letter.policy
    demand = demand_of(hh, letter.round_date, policy)
    rows: list[dict[str, str]] = []

    def row(key: str, label: str, detail: str) -> None:
        rows.append({"key": key, "label": label, "detail": detail})

    persons = ngettext("%(num)d person", "%(num)d persons", demand.persons) % {"num": demand.persons}
    rooms = ngettext("%(num)d room", "%(num)d rooms", demand.rooms_needed) % {"num": demand.rooms_needed}
    row("housing", _("Housing"),
        _("A flat for your household (%(persons)s) with at least %(rooms)s.") % {"persons": persons, "rooms": rooms})
    for key, label, ages in (
        ("kita_u3", _("Childcare (Kita), ages %(lo)d–%(hi)d"), policy.kita_u3_ages),
        ("kita_ue3", _("Childcare (Kita), ages %(lo)d–%(hi)d"), policy.kita_ue3_ages),
        ("school_primary", _("Primary school, ages %(lo)d–%(hi)d"), policy.primary_ages),
        ("school_secondary", _("Secondary school, ages %(lo)d–%(hi)d"), policy.secondary_ages),
    ):
        n = int(getattr(demand, key))
        if n:
            # A word joiner on each side of the dash: an age range never breaks over two lines.
            row(key, re.sub(r"(\d)\s*([–-])\s*(\d)", "\\1\u2060\\2\u2060\\3", label % {"lo": ages[0], "hi": ages[1]}),
                ngettext("%(num)d place for your child", "%(num)d places for your children", n) % {"num": n})
    if demand.language_course_seats:
        n = demand.language_course_seats
        row("language_course_seats", _("German course"),
            ngettext("%(num)d seat in an integration course", "%(num)d seats in an integration course", n)
            % {"num": n})
    if hh.needs_accessible_unit:
        row("units_wheelchair", _("Accessible flat"), _("A wheelchair-accessible flat for your household."))
    if hh.needs_pet_unit:
        row("units_pets_allowed", _("Pets"),
            _("A flat where pets are allowed (%(pet)s).") % {"pet": _(PET_NAMES.get(hh.pets, PET_NAMES["other"]))})
    medical = [_(MEDICAL_SERVICE_NAMES[s]) for s in MEDICAL_SERVICES
               if s in hh.hard_medical_needs and s in offer.medical_services]
    if medical:
        row("medical_services", _("Medical care"),
            _("Available locally: %(services)s.") % {"services": ", ".join(medical)})
    lo, hi = policy.working_ages
    occupations = {m.occupation for m, age in zip(hh.members, ages_on(hh, letter.round_date), strict=True)
                   if lo <= age <= hi}
    sectors = [_(OCCUPATION_SECTORS[o]) for o in OCCUPATIONS
               if o in OCCUPATION_SECTORS and o in occupations and o in offer.job_sectors_shortage]
    if sectors:
        row("job_sectors_shortage", _("Work"),
            _("Workers in your occupations are needed here: %(sectors)s.") % {"sectors": ", ".join(sectors)})
    if offer.ukrainian_community in ("small", "large"):
        row("ukrainian_community", _("Ukrainian community"),
            _("A large Ukrainian community lives here.") if offer.ukrainian_community == "large"
            else _("A small Ukrainian community lives here."))
    if hh.ties_ags and hh.ties_ags == offer.ags:
        row("ties", _("Relatives or friends"), _("Your relatives or friends live in this municipality."))
    elif hh.ties_ags and hh.ties_ags[:5] == offer.kreis:
        row("ties", _("Relatives or friends"), _("Your relatives or friends live in the same district (Kreis)."))
    if hh.pref_settlement == offer.settlement_type:
        row("settlement", _("Type of place"),
            _("The type of place you wished for: %(type)s.") % {"type": _(SETTLEMENT_TYPES[offer.settlement_type])})
    return rows


def _score_terms(assignment: Assignment, tr: gettext.GNUTranslations, locale: Locale) -> list[dict[str, str]]:
    shown = [(k, float(v)) for k, v in assignment.score_terms.items() if abs(float(v)) >= _SHOWN_POINTS]
    shown.sort(key=lambda kv: (-kv[1], kv[0]))  # largest contribution first; ties by key for stable output
    return [{"key": k, "label": tr.gettext(SCORE_TERMS[k]) if k in SCORE_TERMS else k, "points": _points(v, locale)}
            for k, v in shown]


def _points(value: float, locale: Locale) -> str:
    return format_decimal(round(value, 2), format="#,##0.00", locale=locale)


def letter_context(letter: LetterInput) -> dict[str, Any]:
    """The template's view of one letter: the offer, the needs it meets, the explanation, the deadline and the
    arrival window."""
    validate_letter(letter)
    tr = translations(letter.language)
    locale = Locale.parse(FORMAT_LOCALES.get(letter.language, letter.language))
    offer, a = letter.offer, letter.assignment
    state = STATE_NAMES.get(offer.state)
    rank = a.preference_rank if a.preference_rank >= 1 else None
    arrival_from, arrival_until = arrival_window(letter.respond_by, offer.valid_from)
    return {
        "lang": letter.language.replace("_", "-"),
        "dir": "rtl" if locale.character_order == "right-to-left" else "ltr",
        "round_id": letter.round_id,
        "round_date": format_date(letter.round_date, format="long", locale=locale),
        "case_id": letter.household.case_id,
        # The letter goes to the household itself: greeted by the name it gave, else neutrally.
        "household_name": letter.household.contact_name,
        "offer": {
            "name": local_name(offer.ags, offer.municipality_name, letter.language),
            "name_de": offer.municipality_name,  # beside a translated name: the one on signs and forms
            "ags": offer.ags,
            "state": tr.gettext(state) if state else offer.state,
            "state_de": STATE_NAMES_DE.get(offer.state, ""),
            "settlement": tr.gettext(SETTLEMENT_TYPES[offer.settlement_type])
            if offer.settlement_type in SETTLEMENT_TYPES else offer.settlement_type,
            "community": tr.gettext(COMMUNITY_SIZES.get(offer.ukrainian_community, COMMUNITY_SIZES["none"])),
        },
        "needs": _needs_met(letter, tr),
        "terms": _score_terms(a, tr, locale),
        "total_points": _points(float(a.score), locale),
        "rank": rank,
        "eligible_count": letter.eligible_count if rank and letter.eligible_count else None,
        "respond_by_iso": letter.respond_by.isoformat(),
        "respond_by": format_date(letter.respond_by, format="long", locale=locale),
        "arrival_from_iso": arrival_from.isoformat(),
        "arrival_from": format_date(arrival_from, format="long", locale=locale),
        "arrival_until_iso": arrival_until.isoformat(),
        "arrival_until": format_date(arrival_until, format="long", locale=locale),
        "coordination_contact": letter.coordination_contact,
    }


def render_letter_html(letter: LetterInput) -> str:
    """The letter as one self-contained HTML document in its language (inline CSS, no external resources)."""
    return _environment(letter.language).get_template(TEMPLATE_NAME).render(**letter_context(letter))


def render_letter_pdf(html: str) -> bytes:
    """Print a letter's HTML to a tagged PDF; same HTML, same bytes (the packets' deterministic printer)."""
    return render_packet_pdf(html)


def letter_stem(pseudonym_: str, round_id: str, language: str) -> str:
    if not _PSEUDONYM_RE.fullmatch(pseudonym_):
        raise ValueError("pseudonym is not usable in a file name")
    if not _ROUND_ID_RE.fullmatch(round_id) or ".." in round_id:
        raise ValueError(f"round id {round_id!r} is not usable in a file name")
    if not _LANGUAGE_RE.fullmatch(language):
        raise ValueError(f"language {language!r} is not usable in a file name")
    return f"offer_{pseudonym_}_{round_id}_{language}"


def letter_dir(out_root: Path, round_id: str) -> Path:
    return Path(out_root) / "letters" / round_id


def write_letter(letter: LetterInput, out_root: Path) -> LetterFiles:
    """Write out_root/letters/<round_id>/offer_<pseudonym>_<round_id>_<lang>.html and .pdf, atomically."""
    html = render_letter_html(letter)  # validates the round id and language before any path is built
    html_bytes = html.encode("utf-8")
    pdf_bytes = render_letter_pdf(html)
    stem = letter_stem(letter.pseudonym, letter.round_id,
                       letter.language)
    out_dir = letter_dir(out_root, letter.round_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = out_dir / f"{stem}.html", out_dir / f"{stem}.pdf"
    write_atomic(html_path, html_bytes)
    write_atomic(pdf_path, pdf_bytes)
    return LetterFiles(html_path=html_path, pdf_path=pdf_path, html_sha256=hashlib.sha256(html_bytes).hexdigest(),
                       pdf_sha256=hashlib.sha256(pdf_bytes).hexdigest())


# ---------------------------------------------------------------- letters service: a round's letters in the outbox


def round_letter_inputs(settings: Settings, policy: Policy, round_id: str,
                        case_ids: Iterable[str] | None = None) -> list[LetterInput]:
    """One LetterInput per pending or accepted offer of the round, in case id order; none for a household whose
    details were purged or erased (retention deleted its letters)."""
    wanted = None if case_ids is None else set(case_ids)
    with reading(settings) as uow:
        rnd = require_round(uow, round_id)
        made = [m for m in uow.offers.of_round(round_id)
                if m.status in LETTER_STATUSES and (wanted is None or m.case_id in wanted)]
        kept = uow.households.kept(m.case_id for m in made)
        made = [m for m in made if m.case_id in kept]
        assignments = {a.case_id: a for a in uow.rounds.assignments(round_id)}
        households = {h.case_id: h for h in uow.households.get_many(m.case_id for m in made)}
        offers = {o.offer_id: o for o in uow.capacity_offers.all()}
    contact = reachable_contact(settings)
    return [
        LetterInput(round_id=round_id, round_date=rnd.round_date, household=households[m.case_id],
                    assignment=assignments[m.case_id], offer=offers[m.offer_id], respond_by=m.respond_by,
                    language=letter_language(households[m.case_id]), coordination_contact=contact, policy=policy,
                    pseudonym=pseudonym(m.case_id, settings.pseudonym_salt))
        for m in made
    ]


def _key(letter: LetterInput) -> dict[str, str]:
    return {"round_id": letter.round_id, "case_id": letter.household.case_id}


def _look_up(settings: Settings, letter: LetterInput) -> tuple[str, Ledger]:
    """The letter's content hash and what the ledger holds for it (the same content, the latest version)."""
    digest = hashlib.sha256(render_letter_html(letter).encode("utf-8")).hexdigest()
    with reading(settings) as uow:
        return digest, uow.versions.look_up("letter", _key(letter), digest)


def _unchanged(settings: Settings, letter: LetterInput, same: Any, actor: str) -> dict[str, Any]:
    if files_not_as_recorded(same):  # deleted, lost or edited: the same content gives that version's files again
        restore(same, partial(write_letter, letter), settings, actor, "letter_restored",
                f"{letter.round_id}/{letter.pseudonym}")
    return {"case_id": letter.household.case_id, "pseudonym": letter.pseudonym, "language": same.language,
            "version": same.version, "new": False, "html_path": same.html_path, "pdf_path": same.pdf_path}


def _record(settings: Settings, letter: LetterInput, digest: str, ledger: Ledger, kept: dict[str, str],
            files: Files, actor: str) -> dict[str, Any]:
    version, at = ledger.next_version, settings.clock.now()
    with unit_of_work(settings) as uow:
        uow.versions.add("letter", _key(letter), ledger, kept, {
            "language": letter.language, "html_path": str(files.html_path), "pdf_path": str(files.pdf_path),
            "sha256": digest, "created_at": at})
        uow.audit(actor, "letter_rendered", f"{letter.round_id}/{letter.pseudonym}",
                  {"version": version, "language": letter.language, "html_sha256": files.html_sha256,
                   "pdf_sha256": files.pdf_sha256}, at)
    log.info("letter %s/%s v%d (%s) rendered", letter.round_id, letter.pseudonym, version, letter.language)
    return {"case_id": letter.household.case_id, "pseudonym": letter.pseudonym, "language": letter.language,
            "version": version, "new": True, "html_path": str(files.html_path), "pdf_path": str(files.pdf_path)}


LETTERS = DocumentKind("offer letters", _look_up, write_letter, _record, _unchanged)


def render_round_letters(settings: Settings, policy: Policy, round_id: str, actor: str = "cli",
                         ags: str | None = None, case_ids: Iterable[str] | None = None,
                         workers: int = 1) -> list[dict[str, Any]]:
    """Render every pending or accepted household's offer letter of the round (or of one municipality's offers, or
    of the given households); rerunning writes nothing new. With workers > 1 the changed ones are printed in
    parallel processes."""
    require_schema(settings.database_url)
    if ags is not None:
        with reading(settings) as uow:
            in_ags = {m.case_id for m in uow.offers.of_round(round_id) if m.ags == ags}
        case_ids = in_ags if case_ids is None else in_ags & set(case_ids)
    return render_all(settings, LETTERS, round_letter_inputs(settings, policy, round_id, case_ids), actor, workers)
