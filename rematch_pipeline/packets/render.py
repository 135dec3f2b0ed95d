"""Render a municipality's pre-arrival packet for one matching round as accessible German HTML and deterministic PDF."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from rematch_pipeline import glossary
from rematch_pipeline.config import fixed_font_timestamps, pdf_renderer
from rematch_pipeline.contract import AGS_RE, LANGUAGES, MEDICAL_SERVICES, SEXES, WEIGHT_ASPECTS, WEIGHT_RANGE
from rematch_pipeline.domain import Assignment, CapacityOffer, Demand, Household, Policy, ages_on, demand_of

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "municipality_packet.html.j2"
ARRIVAL_WINDOW_DAYS = 14

# Descriptive age bands of the household composition table (inclusive bounds; None = open-ended).
AGE_BANDS: tuple[tuple[int, int | None], ...] = ((0, 2), (3, 5), (6, 9), (10, 17), (18, 64), (65, None))
ADULT_AGE = 18

_ROUND_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

@dataclass(frozen=True)
class PacketHousehold:
    household: Household
    assignment: Assignment
    pseudonym: str
    accepted: bool


@dataclass(frozen=True)
class PacketInput:
    round_id: str
    round_date: date
    offer: CapacityOffer
    households: tuple[PacketHousehold, ...]
    coordination_contact: str
    response_deadline: date
    policy: Policy
    # Households not coming, by their offer's status (declined, expired, withdrawn): counted in the overview under
    # their own status, their details left out.
    withdrawn: Mapping[str, int] = field(default_factory=dict)
    # Every household of the packet has answered: the municipality can plan with it as it stands.
    final: bool = False


@dataclass(frozen=True)
class PacketFiles:
    html_path: Path
    pdf_path: Path
    html_sha256: str
    pdf_sha256: str


def arrival_window(response_deadline: date, valid_from: date | None = None) -> tuple[date, date]:
    """The arrival planning window, first and last day: packets and offer letters state the same one.

    Answers are accepted up to and including the deadline (offers expire once it has passed), so the municipality
    knows who comes only the day after; a capacity offer that starts later moves the start to its valid_from."""
    start = response_deadline + timedelta(days=1)
    if valid_from is not None and valid_from > start:
        start = valid_from
    return start, start + timedelta(days=ARRIVAL_WINDOW_DAYS)


def _de_date(d: date) -> str:
    return d.strftime("%d.%m.%Y")


def document_environment(template_dir: Path = TEMPLATE_DIR, extensions: tuple[str, ...] = ()) -> Environment:
    """The Jinja2 setup every document we render shares: autoescape everywhere, undefined names are errors."""
    return Environment(
        loader=FileSystemLoader(str(template_dir)),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2", "css"), default_for_string=True, default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=list(extensions),
    )


def _environment() -> Environment:
    env = document_environment()
    env.filters["de_date"] = _de_date
    env.filters["de_day"] = lambda d: d.strftime("%d.%m.")
    env.filters["yes_no"] = lambda v: "ja" if v else "nein"
    return env


_ENV = _environment()


def _band_label(lo: int, hi: int | None) -> str:
    return f"{lo}\u2013{hi} Jahre" if hi is not None else f"{lo} Jahre und älter"


def _band_index(age: int) -> int:
    for i, (_lo, hi) in enumerate(AGE_BANDS):
        if hi is None or age <= hi:  # ages below the first band (bad birth year) count as the youngest band
            return i
    return len(AGE_BANDS) - 1


def validate_packet(packet: PacketInput) -> None:
    """Refuse input that would mix municipalities or rounds, or give unsafe file names."""
    ags = packet.offer.ags
    if not AGS_RE.fullmatch(ags):
        raise ValueError(f"offer {packet.offer.offer_id}: AGS must be exactly 8 digits")
    if not _ROUND_ID_RE.fullmatch(packet.round_id) or ".." in packet.round_id:
        raise ValueError(f"round id {packet.round_id!r} is not usable in a file name")
    seen: set[str] = set()
    for ph in packet.households:
        a = ph.assignment
        if a.ags != ags:
            raise ValueError(f"household {ph.pseudonym}: assigned to another municipality, not in this packet")
        if a.round_id != packet.round_id:
            raise ValueError(f"household {ph.pseudonym}: assignment belongs to another round")
        if a.case_id != ph.household.case_id:
            raise ValueError(f"household {ph.pseudonym}: assignment does not belong to this household")
        if not ph.pseudonym or ph.pseudonym in seen:
            raise ValueError(f"household pseudonym {ph.pseudonym!r} is empty or not unique")
        seen.add(ph.pseudonym)


def _ties(household: Household, offer: CapacityOffer) -> dict[str, str]:
    ags = household.ties_ags
    if not ags:
        return {"kind": "none", "text": "Keine Angaben zu Angehörigen oder Bekannten in Deutschland."}
    if ags == offer.ags:
        return {"kind": "municipality", "text": f"Angehörige oder Bekannte leben in Ihrer Gemeinde ({offer.ags})."}
    if ags[:5] == offer.kreis:
        return {"kind": "kreis", "text": "Angehörige oder Bekannte leben in einer anderen Gemeinde Ihres Kreises."}
    return {"kind": "elsewhere", "text": "Angehörige oder Bekannte leben außerhalb Ihres Kreises."}


REASON_TERMS = 3  # the one-line reason names at most this many of the match's largest score terms


def _has_need(term: str, household: Household, demand: Demand) -> bool:
    """Whether a score term names a need the packet may say this household has. The solver scores health care and
    education for every household that weights them; a household without such a need must not read as having it,
    and a medical need is a health detail, named only with consent."""
    if term == "healthcare":
        return household.consent_health_share and bool(household.hard_medical_needs)
    if term == "education":
        return demand.kita_u3 + demand.kita_ue3 + demand.school_primary + demand.school_secondary > 0
    if term == "ties":
        return bool(household.ties_ags)
    return True


def match_reason(household: Household, assignment: Assignment, demand: Demand) -> str:
    """Why this match, in one line, from the explanation the round stored: the preference rank and the largest
    positive score terms the household's needs allow naming."""
    order = list(glossary.SCORE_TERMS)
    terms = [k for k in order if assignment.score_terms.get(k, 0.0) > 0 and _has_need(k, household, demand)]
    top = sorted(terms, key=lambda k: (-assignment.score_terms[k], order.index(k)))[:REASON_TERMS]
    parts = []
    if assignment.preference_rank >= 1:
        parts.append(f"Rang {assignment.preference_rank} auf der Wunschliste des Haushalts")
    if top:
        # Commas only: the terms themselves contain "und".
        parts.append("passt vor allem bei: " + ", ".join(glossary.SCORE_TERMS[k].de for k in top))
    if not parts:
        return "Zugeordnet nach den Bedarfen des Haushalts und den freien Plätzen."
    return "; ".join(parts) + "."


def _household_view(ph: PacketHousehold, packet: PacketInput) -> dict[str, Any]:
    # Imported here: the letters module builds on this one, and its language choice is the one home of that rule.
    from rematch_pipeline.packets.letters import letter_language

    hh = ph.household
    letter_code = letter_language(hh)
    demand = demand_of(hh, packet.round_date, packet.policy)
    ages = ages_on(hh, packet.round_date)
    composition = [[0 for _ in SEXES] for _ in AGE_BANDS]
    members = []
    for n, (m, age) in enumerate(zip(hh.members, ages, strict=True), start=1):
        band = _band_index(age)
        composition[band][SEXES.index(m.sex) if m.sex in SEXES else SEXES.index("diverse")] += 1
        members.append({
            "number": n,
            "relation": glossary.RELATIONS.get(m.relation, m.relation),
            "sex": glossary.SEXES.get(m.sex, m.sex),
            "band": _band_label(*AGE_BANDS[band]),
            "adult": age >= ADULT_AGE,
            "occupation": glossary.OCCUPATIONS.get(m.occupation, m.occupation),
            "qualification": glossary.QUALIFICATIONS.get(m.qualification, m.qualification),
            "shortage": m.occupation in packet.offer.job_sectors_shortage,
        })
    rows: list[dict[str, Any]] = [  # bands nobody is in are left out: half a page per household
        {"label": _band_label(*AGE_BANDS[i]), "counts": counts, "total": sum(counts)}
        for i, counts in enumerate(composition) if sum(counts)
    ]
    health = None  # health and disability details leave the pipeline only with the household's consent
    if hh.consent_health_share:
        health = {
            "medical_needs": [glossary.MEDICAL_SERVICES[s] for s in MEDICAL_SERVICES if s in hh.hard_medical_needs],
            "wheelchair": hh.wheelchair_access,
            "mobility_impaired": [v for v, m in zip(members, hh.members, strict=True) if m.mobility_impaired],
        }
    contact = None
    if ph.accepted:
        # Interview notes are free text and may hold health details: like those, only with the household's consent.
        contact = {
            "case_id": hh.case_id, "name": hh.contact_name, "phone": hh.contact_phone, "email": hh.contact_email,
            "notes": hh.notes if hh.consent_health_share else None,
        }
    return {
        "pseudonym": ph.pseudonym,
        "anchor": "hh-" + re.sub(r"[^A-Za-z0-9_-]", "-", ph.pseudonym),
        "accepted": ph.accepted,
        "status": glossary.STATUSES["accepted" if ph.accepted else "pending"].de,
        "demand": demand,
        "composition": rows,
        "composition_totals": [sum(r["counts"][j] for r in rows) for j in range(len(SEXES))],
        "adults": [m for m in members if m["adult"]],
        "languages": [glossary.LANGUAGES[code] for code in LANGUAGES if code in hh.languages],
        "letter_language": glossary.LANGUAGES.get(letter_code, letter_code),
        "german_level": glossary.GERMAN_LEVELS.get(hh.german_level, hh.german_level),
        # It follows from a wheelchair user or a mobility-impaired member: a disability detail (contract §1), so it
        # is shown only with consent, like the rest; the solver still placed the household where such units exist.
        "accessible_unit": hh.needs_accessible_unit if hh.consent_health_share else None,
        "pets": glossary.PET_KINDS.get(hh.pets, hh.pets),
        "ties": _ties(hh, packet.offer),
        "pref_settlement": glossary.SETTLEMENTS.get(hh.pref_settlement, hh.pref_settlement),
        # What the household weights, most important first; aspects it gave no weight are left out, and so is the
        # weight on health care without consent: how much it matters hints at a health need.
        "weights": sorted(({"label": glossary.ASPECTS[k].de, "value": int(hh.weights.get(k, 0))}
                           for k in WEIGHT_ASPECTS if hh.weights.get(k, 0)
                           and (k != "healthcare" or hh.consent_health_share)), key=lambda w: -w["value"]),
        "reason": match_reason(hh, ph.assignment, demand),
        "health": health,
        "contact": contact,
    }


def packet_context(packet: PacketInput) -> dict[str, Any]:
    """The template's view of one packet: only this municipality's households, with personal data filtered."""
    validate_packet(packet)
    ordered = sorted(packet.households, key=lambda ph: ph.pseudonym)
    households = [_household_view(ph, packet) for ph in ordered]
    total_keys = (
        "persons", "rooms_needed", "kita_u3", "kita_ue3", "school_primary", "school_secondary",
        "language_course_seats", "units_pets_allowed",
    )
    totals = {k: sum(getattr(h["demand"], k) for h in households) for k in total_keys}
    # Only the needs shown above: a total over withheld ones could name the household in a small packet.
    totals["units_wheelchair"] = sum(h["demand"].units_wheelchair for h in households if h["accessible_unit"])
    offer = packet.offer
    arrival_from, arrival_until = arrival_window(packet.response_deadline, offer.valid_from)
    return {
        "round_id": packet.round_id,
        "round_date": packet.round_date,
        "offer": {
            "ags": offer.ags, "name": offer.municipality_name, "state": offer.state,
            "contact_name": offer.contact_name, "offer_id": offer.offer_id,
        },
        "households": households,
        "totals": totals,
        "n_households": len(households),
        "n_accepted": sum(1 for h in households if h["accepted"]),
        "n_pending": sum(1 for h in households if not h["accepted"]),
        "n_withdrawn": sum(packet.withdrawn.values()),
        "withdrawn": [(glossary.STATUSES[s].de, n) for s, n in sorted(
            packet.withdrawn.items(), key=lambda sn: list(glossary.STATUSES).index(sn[0])) if n],
        "final": packet.final,
        "response_deadline": packet.response_deadline,
        "arrival_from": arrival_from,
        "arrival_until": arrival_until,
        "coordination_contact": packet.coordination_contact,
        "status_pending": glossary.STATUSES["pending"].de,
        "sexes": [glossary.SEXES[s] for s in SEXES],
        "weight_range": WEIGHT_RANGE,
        "terms": {**{k: t.de for k, t in glossary.DIMENSIONS.items()}, "rooms_needed": glossary.ROOMS_NEEDED.de,
                  "pets": glossary.PETS.de, "arrival_window": glossary.ARRIVAL_WINDOW.de,
                  "medical_need": glossary.MEDICAL_NEED.de},
        "headers": {**{k: t.de_breakable for k, t in glossary.DIMENSIONS.items()},
                    "rooms_needed": glossary.ROOMS_NEEDED.de_breakable, "pets": glossary.PETS.de_breakable,
                    "arrival_window": glossary.ARRIVAL_WINDOW.de_breakable},
    }


def render_packet_html(packet: PacketInput) -> str:
    """The packet as one self-contained HTML document (inline CSS, no external resources)."""
    return _ENV.get_template(TEMPLATE_NAME).render(**packet_context(packet))


def render_packet_pdf(html: str) -> bytes:
    """Print the packet HTML to a tagged PDF; same HTML, same bytes (no dates; the file ID derives from the HTML).

    Typst by default (packets/typeset.py); REMATCH_PDF_RENDERER=weasyprint prints with WeasyPrint as before."""
    if pdf_renderer() == "typst":
        from rematch_pipeline.packets.typeset import typeset_pdf

        return typeset_pdf(html)
    return render_packet_pdf_weasyprint(html)


def render_packet_pdf_weasyprint(html: str) -> bytes:
    """The HTML printed by WeasyPrint with its print stylesheet: the renderer before Typst, and the bench's baseline."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=(), fail_on_errors=True)  # the packet never loads anything external
    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")
    with fixed_font_timestamps():
        return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(
            pdf_identifier=identifier, pdf_tags=True
        )


def packet_stem(ags: str, round_id: str) -> str:
    return f"packet_{ags}_{round_id}"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace the file in one step, so a reader or a crash never sees half a document."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_packet(packet: PacketInput, out_root: Path) -> PacketFiles:
    """Write out_root/<AGS>/<round_id>/packet_<AGS>_<round_id>.html and .pdf (atomically, safe to re-run)."""
    html = render_packet_html(packet)  # validates AGS and round id before any path is built
    html_bytes = html.encode("utf-8")
    pdf_bytes = render_packet_pdf(html)
    ags, round_id = packet.offer.ags, packet.round_id
    out_dir = Path(out_root) / ags / round_id
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{packet_stem(ags, round_id)}.html"
    pdf_path = out_dir / f"{packet_stem(ags, round_id)}.pdf"
    write_atomic(html_path, html_bytes)
    write_atomic(pdf_path, pdf_bytes)
    return PacketFiles(
        html_path=html_path,
        pdf_path=pdf_path,
        html_sha256=hashlib.sha256(html_bytes).hexdigest(),
        pdf_sha256=hashlib.sha256(pdf_bytes).hexdigest(),
    )
