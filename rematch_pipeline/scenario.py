"""Deterministic demo scenario: a KoboToolbox household export and a municipal capacity template from one seed."""

from __future__ import annotations

import itertools
import math
import random
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from rematch_pipeline.config import shipped_policy
from rematch_pipeline.contract import (
    CAPACITY_FIELDS,
    HOUSEHOLD_FIELDS,
    HOUSEHOLD_SELECT_MULTIPLE,
    LAND_BY_AGS_PREFIX,
    LANGUAGES,
    MEDICAL_NEEDS,
    MEDICAL_SERVICES,
    MEMBER_FIELDS,
    MIN_PLACES_PERSONS,
    OCCUPATIONS,
    WEIGHT_ASPECTS,
)
from rematch_pipeline.domain import Household, Member, demand_of
from rematch_pipeline.forms import CAPACITY_INSTRUCTIONS as _INSTRUCTIONS
from rematch_pipeline.reproducible import FIXED_TIME, workbook_bytes, write_atomically, zip_bytes

DEFAULT_ROUND_DATE = date(2026, 11, 23)
HOUSEHOLDS_FILE = "households_kobo.xlsx"
CAPACITY_FILE = "capacity.xlsx"
MAX_MUNICIPALITIES = 5000
KOBO_MAIN_SHEET = "rematch_household"
KOBO_MEMBERS_SHEET = "members"
CAPACITY_SHEET = "capacity"
INSTRUCTIONS_SHEET = "instructions"

# The creator named in the generated workbooks (their timestamps are fixed: `reproducible`).
_CREATOR = "Re:Match scenario generator"

# Kobo group paths of the form (the contract names are the last path element).
_GROUP = {
    "wheelchair_access": "grp_needs", "medical_needs": "grp_needs", "pets": "grp_needs",
    "pref_settlement": "grp_prefs", **{f"weight_{a}": "grp_prefs" for a in WEIGHT_ASPECTS},
}
_HXL = {
    "case_id": "#beneficiary+id", "interview_date": "#date+interview", "interview_location": "#loc+name",
    "contact_name": "#contact+name", "contact_phone": "#contact+phone", "contact_email": "#contact+email",
    "languages": "#meta+languages",
    "relation": "#beneficiary+relation", "sex": "#beneficiary+sex", "birth_year": "#beneficiary+birth_year",
}

# The pilot's eight municipalities with their real Amtlicher Gemeindeschlüssel; (ags, name, type, population).
PILOT_CITIES: tuple[tuple[str, str, str, int], ...] = (
    ("03101000", "Braunschweig", "big_city", 253_000),
    ("05170008", "Dinslaken", "mid_city", 67_000),
    ("05111000", "Düsseldorf", "big_city", 619_000),
    ("01002000", "Kiel", "big_city", 248_000),
    ("09162000", "München", "big_city", 1_505_000),
    ("08416036", "Rottenburg am Neckar", "mid_city", 45_000),
    ("03102000", "Salzgitter", "big_city", 105_000),
    ("05382068", "Troisdorf", "mid_city", 76_000),
)
# Real neighbours in the pilot's Kreise, for ties "in the same Kreis" that are not on offer themselves.
_PILOT_KREIS_NEIGHBOURS = {
    "05170": ("05170024", "05170044", "05170048"),  # Moers, Voerde, Wesel (Kreis Wesel)
    "05382": ("05382056", "05382060"),  # Sankt Augustin, Siegburg (Rhein-Sieg-Kreis)
    "08416": ("08416041",),  # Tübingen (Landkreis Tübingen)
}
# City states have one (Bremen: two) municipalities; a synthetic scenario may use each real AGS once.
_CITY_STATES = {
    "HH": (("02000000", "Hamburg", 1_892_000),),
    "BE": (("11000000", "Berlin", 3_755_000),),
    "HB": (("04011000", "Bremen", 569_000), ("04012000", "Bremerhaven", 114_000)),
}
# Population in millions (2023, rounded): Länder draw synthetic municipalities in this proportion.
_LAND_POPULATION = {
    "SH": 2.95, "HH": 1.89, "NI": 8.14, "HB": 0.69, "NW": 18.14, "HE": 6.39, "RP": 4.16, "BW": 11.28,
    "BY": 13.37, "SL": 0.99, "BE": 3.76, "BB": 2.57, "MV": 1.63, "SN": 4.09, "ST": 2.19, "TH": 2.13,
}
_AGS_PREFIX = {land: prefix for prefix, land in LAND_BY_AGS_PREFIX.items()}
# Third AGS digit (Regierungsbezirk; 0 where a Land has none).
_REGBEZ = {
    "SH": "0", "NI": "1234", "NW": "13579", "HE": "456", "RP": "123", "BW": "1234", "BY": "1234567", "SL": "0",
    "BB": "0", "MV": "0", "SN": "567", "ST": "0", "TH": "0",
}
_REGION = {
    "SH": "north", "NI": "north", "MV": "north", "NW": "west", "HE": "west", "RP": "west", "SL": "west",
    "BW": "south", "BY": "south", "BB": "east", "SN": "east", "ST": "east", "TH": "east",
}
_NAME_ROOTS = (
    "Linden", "Eichen", "Birken", "Buchen", "Tannen", "Rosen", "Wald", "Berg", "Stein", "Mühl", "Hohen", "Nieder",
    "Ober", "Kirch", "Wester", "Oster", "Sonnen", "Falken", "Hirsch", "Wolfs", "Fried", "Marien", "Erlen", "Hagen",
    "Kron", "Wiesen", "Brunn", "Hasel", "Weiden", "Eschen", "Ahorn", "Dorn", "Lauen", "Schön", "Grün", "Roth",
    "Wein", "Holz", "Bruch", "Sand", "Kalk", "Salz", "Hammer", "Burg", "Heide", "Lang", "Breit", "Kloster", "Mark",
    "Elm",
)
_NAME_SUFFIXES = {
    "north": ("büttel", "stedt", "horst", "wedel", "dorf", "hagen", "feld", "burg", "hude", "brück", "fleth", "au"),
    "west": ("kirchen", "rath", "hausen", "bach", "heim", "scheid", "born", "dorf", "feld", "berg", "stadt", "beck"),
    "south": ("ingen", "heim", "hofen", "bach", "stetten", "weiler", "hausen", "kirchen", "berg", "dorf", "reuth",
              "zell"),
    "east": ("ow", "itz", "witz", "roda", "leben", "stedt", "dorf", "au", "feld", "walde", "rode", "hain"),
}
_NAME_QUALIFIERS = {
    "north": (" an der Elbe", " (Holstein)", " in Oldenburg", " an der Weser", " (Aller)"),
    "west": (" am Rhein", " (Westfalen)", " im Taunus", " an der Mosel", " (Eifel)"),
    "south": (" am Neckar", " im Allgäu", " an der Donau", " (Oberpfalz)", " im Schwarzwald"),
    "east": (" (Spree)", " an der Saale", " (Vogtland)", " (Uckermark)", " an der Havel"),
}
_SETTLEMENT_SHARE = {"big_city": 8, "mid_city": 35, "small_town": 35, "rural": 22}
_POPULATION_RANGE = {"big_city": (100_000, 650_000), "mid_city": (20_000, 99_000),
                     "small_town": (5_000, 19_900), "rural": (800, 4_900)}
# Probability that a municipality of this type offers each medical service.
_SERVICE_PROBABILITY = {
    "big_city": {"dialysis": 0.9, "oncology": 0.9, "psychotherapy": 0.95, "paediatric_specialist": 0.95,
                 "diabetes_care": 1.0},
    "mid_city": {"dialysis": 0.5, "oncology": 0.4, "psychotherapy": 0.7, "paediatric_specialist": 0.8,
                 "diabetes_care": 1.0},
    "small_town": {"dialysis": 0.15, "oncology": 0.1, "psychotherapy": 0.35, "paediatric_specialist": 0.45,
                   "diabetes_care": 0.95},
    "rural": {"dialysis": 0.05, "oncology": 0.03, "psychotherapy": 0.15, "paediatric_specialist": 0.2,
              "diabetes_care": 0.8},
}
_COMMUNITY = {"big_city": (("large", 70), ("small", 30)), "mid_city": (("large", 25), ("small", 60), ("none", 15)),
              "small_town": (("small", 45), ("none", 55)), "rural": (("small", 25), ("none", 75))}

_INTERVIEW_LOCATIONS = (("Warszawa", 30), ("Kraków", 20), ("Wrocław", 15), ("Przemyśl", 15), ("Rzeszów", 10),
                        ("Lublin", 10))
_LOCATION_NAMES = [c for c, _ in _INTERVIEW_LOCATIONS]
_LOCATION_WEIGHTS = [w for _, w in _INTERVIEW_LOCATIONS]
_FEMALE_NAMES = ("Olena", "Iryna", "Nataliia", "Tetiana", "Oksana", "Yuliia", "Svitlana", "Kateryna", "Anastasiia",
                 "Mariia", "Halyna", "Liudmyla", "Viktoriia", "Alina", "Daryna", "Inna", "Larysa", "Khrystyna")
_MALE_NAMES = ("Oleksandr", "Andrii", "Serhii", "Dmytro", "Volodymyr", "Mykola", "Ivan", "Yurii", "Vasyl", "Taras",
               "Bohdan", "Maksym", "Oleh", "Roman", "Petro")
_SURNAMES = ("Kovalenko", "Shevchenko", "Bondarenko", "Tkachenko", "Kravchenko", "Boiko", "Melnyk", "Oliinyk",
             "Lysenko", "Marchenko", "Savchenko", "Rudenko", "Moroz", "Petrenko", "Kovalchuk", "Polishchuk",
             "Tkachuk", "Kravets", "Hnatiuk", "Pavlenko", "Sydorenko", "Honcharenko", "Zinchenko", "Ponomarenko")
_GERMAN_FIRST = ("Anna", "Julia", "Katrin", "Sabine", "Claudia", "Miriam", "Thomas", "Michael", "Stefan", "Jan",
                 "Andreas", "Martina", "Jörg", "Elif", "Markus", "Nadine")
_GERMAN_LAST = ("Schmidt", "Müller", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
                "Schulz", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Yılmaz", "Schröder", "Braun")
_NOTES = (
    "Sister already lives in Germany.", "Needs ground floor if possible.", "Son attends online school in Ukraine.",
    "Brauchen Hilfe bei der Anmeldung.", "Потрібна допомога з документами.", "Prefers a quiet area & good transport.",
    "Mother uses a walker, <b>no stairs</b> please.", "Car available.", "Has driving licence (C/E).",
    "Works remotely for a Kyiv firm.",
    "Позитивний досвід роботи в лікарні.", "Daughter plays violin, looking for music school.",
    "Would like to stay near the border first.", "Interview partly in Russian.",
)
# Occupation weights for working-age adults; construction/logistics are weighted up for men below.
_OCCUPATION_WEIGHTS = {
    "health_care": 10, "education": 12, "it": 7, "engineering": 6, "construction": 4, "hospitality": 8,
    "manufacturing": 7, "logistics": 4, "agriculture": 3, "retail": 10, "public_admin": 6, "other": 10, "none": 9,
}
_ACADEMIC = frozenset({"health_care", "education", "it", "engineering", "public_admin"})
_HOUSEHOLD_TYPES = (("single_mother", 35), ("couple_children", 20), ("single", 15), ("multi_adult", 15),
                    ("mother_children_grandmother", 10), ("misc", 5))


@dataclass(frozen=True)
class ScenarioFiles:
    households_xlsx: Path
    capacity_xlsx: Path


@dataclass
class _Person:
    relation: str
    sex: str
    age: int
    mobility_impaired: bool = False
    occupation: str = "none"
    qualification: str = "none"


@dataclass
class _Municipality:
    ags: str
    name: str
    settlement_type: str
    population: int

    @property
    def state(self) -> str:
        return LAND_BY_AGS_PREFIX[self.ags[:2]]


@dataclass
class _Household:
    case_id: str
    interview_date: date
    submission_time: datetime
    uuid: str
    values: dict[str, object]  # contract fields (ungrouped names) -> value as Kobo writes it
    members: list[_Person] = field(default_factory=list)


def generate_scenario(out_dir: Path, households: int, municipalities: int, seed: int,
                      round_date: date = DEFAULT_ROUND_DATE, *, pilot_cities: bool = True,
                      hxl_row: bool = False) -> ScenarioFiles:
    """Write households_kobo.xlsx and capacity.xlsx into out_dir; the same arguments give byte-identical files.

    The first min(municipalities, 8) municipalities are the pilot cities (real AGS) unless pilot_cities is False;
    further ones are synthetic with syntactically valid, unique AGS. hxl_row adds Kobo's optional HXL tag row.
    """
    if households < 1 or municipalities < 1:
        raise ValueError("a scenario needs at least one household and one municipality")
    if municipalities > MAX_MUNICIPALITIES:
        raise ValueError(f"at most {MAX_MUNICIPALITIES} municipalities (synthetic AGS are drawn without repetition)")
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    munis, neighbours = draw_municipalities(rng, municipalities, pilot_cities)
    # Relatives more often live in bigger places: ties are drawn with weight sqrt(population).
    tie_weights = list(itertools.accumulate(math.sqrt(m.population) for m in munis))
    hhs = [draw_household(rng, i + 1, round_date, munis, tie_weights, neighbours) for i in range(households)]
    offers = capacity_rows(rng, munis, hhs, round_date)
    files = ScenarioFiles(out_dir / HOUSEHOLDS_FILE, out_dir / CAPACITY_FILE)
    write_xlsx(files.households_xlsx, kobo_sheets(rng, hhs, round_date, hxl_row))
    save_reproducibly(capacity_workbook(offers), files.capacity_xlsx)
    return files


# ---------------------------------------------------------------------------------------------------------------
# Municipalities


def draw_municipalities(rng: random.Random, n: int, pilot_cities: bool) -> tuple[list[_Municipality], list[str]]:
    """Pilot cities first, then synthetic ones; also AGS of same-Kreis neighbours that are not on offer."""
    munis = [_Municipality(a, name, st, pop) for a, name, st, pop in PILOT_CITIES[:n]] if pilot_cities else []
    used_ags = {m.ags for m in munis}
    reserved_kreise = {a[:5] for a, *_ in PILOT_CITIES}  # never invent towns inside the real pilot Kreise
    neighbours = [a for m in munis for a in _PILOT_KREIS_NEIGHBOURS.get(m.ags[:5], ())]
    used_names = {m.name for m in munis}
    landkreise: dict[str, list[str]] = {}  # Land -> synthetic Landkreis codes (5 digits)
    kreis_members: dict[str, list[int]] = {}  # Landkreis -> used Gemeinde numbers
    lands = list(_LAND_POPULATION)
    land_weights = list(_LAND_POPULATION.values())
    types = list(_SETTLEMENT_SHARE)
    type_weights = list(_SETTLEMENT_SHARE.values())
    while len(munis) < n:
        land = rng.choices(lands, land_weights)[0]
        if land in _CITY_STATES:
            free = [c for c in _CITY_STATES[land] if c[0] not in used_ags]
            if free:
                ags, name, pop = free[0]
                munis.append(_Municipality(ags, name, "big_city", pop))
                used_ags.add(ags)
                used_names.add(name)
            continue  # a city state has no further municipalities; draw again
        settlement = rng.choices(types, type_weights)[0]
        lo, hi = _POPULATION_RANGE[settlement]
        population = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        drawn = _synthetic_ags(rng, land, settlement, used_ags, reserved_kreise, landkreise, kreis_members)
        if drawn is None:
            continue
        used_ags.add(drawn)
        munis.append(_Municipality(drawn, _synthetic_name(rng, land, used_names), settlement, population))
    for kreis, numbers in kreis_members.items():
        # One Gemeinde next to the ones on offer, as the place where relatives may live.
        spare = next(k for k in range(4, 1000, 4) if k not in numbers)
        neighbours.append(f"{kreis}{spare:03d}")
    return munis, neighbours


def _synthetic_ags(rng: random.Random, land: str, settlement: str, used: set[str], reserved: set[str],
                   landkreise: dict[str, list[str]], kreis_members: dict[str, list[int]]) -> str | None:
    prefix = _AGS_PREFIX[land]
    for _ in range(50):
        regbez = rng.choice(_REGBEZ[land])
        if settlement == "big_city":
            # Big cities are kreisfrei: Kreis numbers 01-49, Gemeinde 000 (like 03101000).
            ags = f"{prefix}{regbez}{rng.randint(1, 49):02d}000"
            if ags not in used and ags[:5] not in reserved and ags[:5] not in kreis_members:
                return ags
            continue
        existing = landkreise.get(land, [])
        if existing and rng.random() < 0.4:
            kreis = rng.choice(existing)
        else:
            kreis = f"{prefix}{regbez}{rng.randint(50, 99):02d}"
            if kreis in reserved or kreis in kreis_members:
                continue
            landkreise.setdefault(land, []).append(kreis)
            kreis_members[kreis] = []
        number = rng.randrange(4, 200, 4)
        ags = f"{kreis}{number:03d}"
        if ags not in used and number not in kreis_members[kreis]:
            kreis_members[kreis].append(number)
            return ags
    return None


def _synthetic_name(rng: random.Random, land: str, used: set[str]) -> str:
    region = _REGION[land]
    name = ""
    for attempt in range(40):
        name = rng.choice(_NAME_ROOTS) + rng.choice(_NAME_SUFFIXES[region])
        if rng.random() < 0.05:
            name = "Bad " + name
        if attempt >= 10 or rng.random() < 0.12:
            name += rng.choice(_NAME_QUALIFIERS[region])
        if name not in used:
            break
    else:
        name = f"{name} {len(used)}"  # the name pools are exhausted only in huge scenarios
    used.add(name)
    return name


# ---------------------------------------------------------------------------------------------------------------
# Households


def _age_child(rng: random.Random, parent_age: int) -> int:
    return rng.randint(0, max(0, min(17, parent_age - 18)))


def _members_of(rng: random.Random, kind: str) -> list[_Person]:
    def sex_child() -> str:
        return rng.choice(("female", "male"))

    if kind == "single_mother":
        age = int(rng.triangular(22, 50, 35))
        kids = rng.choices((1, 2, 3), (45, 40, 15))[0]
        return [_Person("head", "female", age)] + [_Person("child", sex_child(), _age_child(rng, age))
                                                   for _ in range(kids)]
    if kind == "couple_children":
        head_sex = rng.choices(("female", "male"), (55, 45))[0]
        age = int(rng.triangular(25, 55, 38))
        spouse_age = max(20, age + rng.randint(-5, 5))
        kids = rng.choices((1, 2, 3, 4), (30, 35, 25, 10))[0]
        younger = min(age, spouse_age)
        return ([_Person("head", head_sex, age), _Person("spouse", "male" if head_sex == "female" else "female",
                                                         spouse_age)]
                + [_Person("child", sex_child(), _age_child(rng, younger)) for _ in range(kids)])
    if kind == "single":
        age = rng.choices((rng.randint(18, 29), rng.randint(30, 59), rng.randint(60, 80)), (35, 40, 25))[0]
        return [_Person("head", rng.choices(("female", "male", "diverse"), (65, 34, 1))[0], age)]
    if kind == "multi_adult":
        sub = rng.choices(("siblings", "adult_child_parent", "friends"), (40, 45, 15))[0]
        age = rng.randint(20, 50)
        head = _Person("head", rng.choices(("female", "male"), (75, 25))[0], age)
        if sub == "siblings":
            return [head] + [_Person("sibling", rng.choice(("female", "male")), max(18, age + rng.randint(-8, 8)))
                             for _ in range(rng.choices((1, 2), (75, 25))[0])]
        if sub == "adult_child_parent":
            parents = [_Person("parent", "female", min(90, age + rng.randint(20, 35)))]
            if rng.random() < 0.2:
                parents.append(_Person("parent", "male", min(92, parents[0].age + rng.randint(0, 5))))
            return [head] + parents
        return [head] + [_Person("other", rng.choice(("female", "male")), rng.randint(18, 60))
                         for _ in range(rng.choices((1, 2), (70, 30))[0])]
    if kind == "mother_children_grandmother":
        age = int(rng.triangular(24, 48, 34))
        kids = rng.choices((1, 2, 3), (45, 40, 15))[0]
        grandmother = min(88, max(60, age + rng.randint(18, 32)))
        return ([_Person("head", "female", age)]
                + [_Person("child", sex_child(), _age_child(rng, age)) for _ in range(kids)]
                + [_Person("parent", "female", grandmother)])
    sub = rng.choices(("elderly_couple", "grandmother_grandchildren", "extended"), (40, 35, 25))[0]
    if sub == "elderly_couple":
        age = rng.randint(62, 82)
        return [_Person("head", "female", age), _Person("spouse", "male", min(90, age + rng.randint(-3, 6)))]
    if sub == "grandmother_grandchildren":
        age = rng.randint(52, 75)
        return [_Person("head", "female", age)] + [_Person("other", sex_child(), rng.randint(2, 17))
                                                   for _ in range(rng.choices((1, 2, 3), (50, 35, 15))[0])]
    age = int(rng.triangular(28, 50, 38))
    spouse_age = max(20, age - 2)
    return ([_Person("head", "male", age), _Person("spouse", "female", spouse_age)]
            + [_Person("child", sex_child(), _age_child(rng, spouse_age)) for _ in range(rng.randint(3, 5))]
            + [_Person("parent", "female", min(88, max(60, age + rng.randint(20, 30))))])


def _work_profile(rng: random.Random, person: _Person) -> None:
    if person.age < 18:
        return
    if person.age >= 65 and rng.random() < 0.75:
        person.occupation = "none"  # retired
    elif person.age <= 21 and rng.random() < 0.6:
        person.occupation = "none"  # still studying
    else:
        weights = dict(_OCCUPATION_WEIGHTS)
        if person.sex == "male":
            weights.update(construction=12, logistics=9, manufacturing=10, education=5)
        person.occupation = rng.choices(list(weights), list(weights.values()))[0]
    if person.age <= 21:
        person.qualification = rng.choices(("none", "vocational"), (70, 30))[0]
    elif person.occupation in _ACADEMIC:
        person.qualification = rng.choices(("vocational", "bachelor", "master_plus"), (15, 40, 45))[0]
    else:
        person.qualification = rng.choices(("none", "vocational", "bachelor", "master_plus"), (12, 50, 22, 16))[0]


def _weight(rng: random.Random, centre: float) -> int:
    return max(0, min(5, round(rng.gauss(centre, 1.3))))


def draw_household(rng: random.Random, number: int, round_date: date, munis: Sequence[_Municipality],
               tie_weights: Sequence[float], neighbours: Sequence[str]) -> _Household:
    kind = rng.choices([k for k, _ in _HOUSEHOLD_TYPES], [w for _, w in _HOUSEHOLD_TYPES])[0]
    members = _members_of(rng, kind)
    for person in members:
        _work_profile(rng, person)
    wheelchair = False
    if rng.random() < 0.05:
        # Impairment is more likely among the old; roughly two in five of these households need a wheelchair unit.
        oldest = max(members, key=lambda p: p.age)
        (oldest if oldest.age >= 60 and rng.random() < 0.7 else rng.choice(members)).mobility_impaired = True
        wheelchair = rng.random() < 0.4
    has_children = any(p.age < 18 for p in members)
    has_elderly = any(p.age >= 65 for p in members)

    german = rng.choices(("none", "a1", "a2", "b1", "b2_plus"), (55, 27, 11, 5, 2))[0]
    langs = set(rng.choices((("uk", "ru"), ("uk",), ("ru",), ("uk", "other")), (55, 33, 9, 3))[0])
    if rng.random() < (0.25 if members[0].age < 40 else 0.08):
        langs.add("en")
    if rng.random() < 0.08:
        langs.add("pl")
    if german in ("b1", "b2_plus") or rng.random() < 0.03:
        langs.add("de")
    languages = [lang for lang in LANGUAGES if lang in langs]

    needs = set()
    if rng.random() < (0.15 if has_elderly else 0.06):
        needs.add("diabetes_care")
    if rng.random() < 0.09:
        needs.add("psychotherapy")
    if has_children and rng.random() < 0.08:
        needs.add("paediatric_specialist")
    if rng.random() < 0.006:
        needs.add("dialysis")
    if rng.random() < 0.012:
        needs.add("oncology")
    medical = [n for n in MEDICAL_NEEDS if n in needs] or ["none"]
    working = any(18 <= p.age <= 64 for p in members)
    centres = {
        "work": 3.5 if working else 0.8, "education": 4.0 if has_children else 1.5, "community": 3.0,
        "healthcare": 4.0 if needs or has_elderly or wheelchair else 2.3, "housing": 3.5, "culture": 2.0,
    }
    ties = None
    if rng.random() < 0.15:
        if neighbours and rng.random() < 0.25:
            ties = rng.choice(neighbours)
        else:
            ties = rng.choices(munis, cum_weights=tie_weights)[0].ags

    days_before = rng.randint(1, 60)
    interview = round_date - timedelta(days=days_before)
    submitted = datetime.combine(interview, datetime.min.time()) + timedelta(
        days=rng.randint(0, min(2, days_before - 1)), hours=rng.randint(8, 19), minutes=rng.randint(0, 59),
        seconds=rng.randint(0, 59))
    head = members[0]
    first = rng.choice(_MALE_NAMES if head.sex == "male" else _FEMALE_NAMES)
    last = rng.choice(_SURNAMES)
    phone = (f"+48 {rng.choice('5678')}{rng.randint(0, 99):02d} {rng.randint(0, 999):03d} {rng.randint(0, 999):03d}"
             if rng.random() < 0.95 else None)
    email = (f"{first.lower()}.{last.lower()}{rng.choice(('', str(rng.randint(1, 99))))}@"
             f"{rng.choice(('example.com', 'example.org', 'example.net'))}" if rng.random() < 0.7 else None)
    case_id = f"RM-{round_date.year}-{number:05d}"
    values: dict[str, object] = {
        "case_id": case_id,
        "interview_date": interview.isoformat(),  # Kobo writes dates as text
        "interview_location": rng.choices(_LOCATION_NAMES, _LOCATION_WEIGHTS)[0],
        "consent_matching": "yes" if rng.random() < 0.97 else "no",
        "consent_health_share": "yes" if rng.random() < 0.80 else "no",
        "contact_name": f"{first} {last}",  # no draw of its own: the same seed gives the same households
        "contact_phone": phone,
        "contact_email": email,
        "languages": " ".join(languages),
        "german_level": german,
        "wheelchair_access": "yes" if wheelchair else "no",
        "medical_needs": " ".join(medical),
        "pets": rng.choice(("cat", "dog")) if rng.random() < 0.10 else "none",
        "pref_settlement": rng.choices(("big_city", "mid_city", "small_town", "rural", "any"),
                                       (30, 20, 10, 5, 35))[0],
        **{f"weight_{a}": _weight(rng, centres[a]) for a in WEIGHT_ASPECTS},
        "ties_ags": ties,
        "notes": rng.choice(_NOTES) if rng.random() < 0.25 else None,
    }
    return _Household(case_id, interview, submitted, str(uuid.UUID(int=rng.getrandbits(128), version=4)), values,
                      members)


# ---------------------------------------------------------------------------------------------------------------
# Capacity


def _domain_household(h: _Household, round_date: date) -> Household:
    v = h.values
    weights = {a: int(str(v[f"weight_{a}"])) for a in WEIGHT_ASPECTS}
    return Household(
        case_id=h.case_id, interview_date=h.interview_date, consent_matching=v["consent_matching"] == "yes",
        consent_health_share=v["consent_health_share"] == "yes", languages=tuple(str(v["languages"]).split()),
        german_level=str(v["german_level"]), wheelchair_access=v["wheelchair_access"] == "yes",
        medical_needs=tuple(str(v["medical_needs"]).split()), pets=str(v["pets"]),
        pref_settlement=str(v["pref_settlement"]), weights=weights,
        members=tuple(Member(p.relation, p.sex, round_date.year - p.age, p.mobility_impaired, p.occupation,
                             p.qualification) for p in h.members),
    )


def _allocate(total: int, weights: Sequence[float], minimum: int) -> list[int]:
    """Integers proportional to weights, each at least `minimum`, summing to `total` (largest remainder)."""
    n = len(weights)
    if total <= minimum * n:
        return [minimum] * n
    floored = [False] * n
    while True:
        free_total = total - minimum * sum(floored)
        free_weight = sum(w for w, f in zip(weights, floored, strict=True) if not f)
        newly = [i for i in range(n) if not floored[i] and free_total * weights[i] / free_weight < minimum]
        if not newly:
            break
        for i in newly:
            floored[i] = True
    shares = [0.0 if floored[i] else free_total * weights[i] / free_weight for i in range(n)]
    alloc = [minimum if floored[i] else int(shares[i]) for i in range(n)]
    rest = total - sum(alloc)
    by_remainder = sorted((i for i in range(n) if not floored[i]), key=lambda i: (-(shares[i] - int(shares[i])), i))
    for i in by_remainder[:rest]:
        alloc[i] += 1
    return alloc


def _stochastic_round(rng: random.Random, x: float) -> int:
    whole = math.floor(x)
    return whole + (1 if rng.random() < x - whole else 0)


def capacity_rows(rng: random.Random, munis: Sequence[_Municipality], hhs: Sequence[_Household],
                   round_date: date) -> list[dict[str, object]]:
    # Demand by the domain's own rules (default policy), so capacity is sized in the terms the solver uses.
    policy = shipped_policy()
    demands = [demand_of(_domain_household(h, round_date), round_date, policy)
               for h in hhs if h.values["consent_matching"] == "yes"] or [
        demand_of(_domain_household(hhs[0], round_date), round_date, policy)]
    persons = sum(d.persons for d in demands)
    per_person = {dim: sum(getattr(d, dim) for d in demands) / persons
                  for dim in ("kita_u3", "kita_ue3", "school_primary", "school_secondary", "language_course_seats")}
    room_share = [sum(1 for d in demands if d.rooms_needed == k) / len(demands) + 0.02 for k in (1, 2, 3, 4)]
    persons_per_unit = persons / len(demands)

    # Capacity slightly short of or just above demand, so the matching has to choose.
    target = round(persons * rng.uniform(0.90, 1.05))
    places = _allocate(target, [m.population ** 0.55 * rng.uniform(0.6, 1.4) for m in munis], MIN_PLACES_PERSONS)
    not_valid = set(rng.sample(range(len(munis)), round(0.05 * len(munis))))
    rows = []
    for i, (m, p) in enumerate(zip(munis, places, strict=True)):
        units = max(1, round(p / persons_per_unit * rng.uniform(1.0, 1.2)))
        mix = [s * rng.uniform(0.6, 1.4) for s in room_share]
        drawn = rng.choices((1, 2, 3, 4), mix, k=units)
        by_rooms = [drawn.count(k) for k in (1, 2, 3, 4)]
        valid_from = round_date - timedelta(days=rng.randint(7, 120))
        valid_until = round_date + timedelta(days=rng.randint(30, 240))
        if i in not_valid:
            if rng.random() < 0.5:  # expired
                valid_until = round_date - timedelta(days=rng.randint(1, 30))
                valid_from = valid_until - timedelta(days=rng.randint(60, 180))
            else:  # not yet valid
                valid_from = round_date + timedelta(days=rng.randint(1, 45))
                valid_until = valid_from + timedelta(days=rng.randint(60, 180))
        probs = _SERVICE_PROBABILITY[m.settlement_type]
        services = [s for s in MEDICAL_SERVICES if rng.random() < probs[s]] or ["diabetes_care"]
        sectors = rng.sample([o for o in OCCUPATIONS if o not in ("none", "other")], rng.randint(2, 6))
        community = _COMMUNITY[m.settlement_type]
        first, last = rng.choice(_GERMAN_FIRST), rng.choice(_GERMAN_LAST)
        row: dict[str, object] = {
            "offer_id": f"OF-{m.ags}-1",
            "ags": m.ags,
            "municipality_name": m.name,
            "state": m.state,
            "settlement_type": m.settlement_type,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "places_persons": p,
            "units_1_room": by_rooms[0],
            "units_2_rooms": by_rooms[1],
            "units_3_rooms": by_rooms[2],
            "units_4plus_rooms": by_rooms[3],
            "units_wheelchair": min(units, _stochastic_round(rng, units * rng.uniform(0.03, 0.12))),
            "units_pets_allowed": min(units, _stochastic_round(rng, units * rng.uniform(0.05, 0.30))),
            **{dim: _stochastic_round(rng, p * share * rng.uniform(0.6, 1.3)) for dim, share in per_person.items()},
            "medical_services": " ".join(services),
            "job_sectors_shortage": " ".join(o for o in OCCUPATIONS if o in sectors),
            "ukrainian_community": rng.choices([c for c, _ in community], [w for _, w in community])[0],
            "contact_name": f"{first} {last}",
            "contact_email": f"integration.{_slug(m.name)}@example.org",
        }
        rows.append(row)
    return rows


def _slug(name: str) -> str:
    text = name.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


# ---------------------------------------------------------------------------------------------------------------
# Workbooks


def _kobo_columns() -> list[tuple[str, str, str | None]]:
    """(header, contract field, option) in the form's order; option columns follow their select_multiple column."""
    cols: list[tuple[str, str, str | None]] = []
    for name in HOUSEHOLD_FIELDS:
        header = f"{_GROUP[name]}/{name}" if name in _GROUP else name
        cols.append((header, name, None))
        for option in HOUSEHOLD_SELECT_MULTIPLE.get(name, ()):
            cols.append((f"{header}/{option}", name, option))
    return cols


_KOBO_SYSTEM = ("_id", "_uuid", "_submission_time", "_validation_status", "_index")
_MEMBER_SYSTEM = ("_index", "_parent_table_name", "_parent_index", "_submission__uuid")


def kobo_sheets(rng: random.Random, hhs: Sequence[_Household], round_date: date,
                 hxl_row: bool) -> list[tuple[str, list[list[object]]]]:
    cols = _kobo_columns()
    main: list[list[object]] = [[*(h for h, _, _ in cols), *_KOBO_SYSTEM]]
    members: list[list[object]] = [[*MEMBER_FIELDS, *_MEMBER_SYSTEM]]
    if hxl_row:
        main.append([*(_HXL.get(f) if o is None else None for _, f, o in cols), *[None] * len(_KOBO_SYSTEM)])
        members.append([*(_HXL.get(f) for f in MEMBER_FIELDS), *[None] * len(_MEMBER_SYSTEM)])
    submission_id = rng.randint(300_000_000, 400_000_000)
    member_index = 0
    for index, h in enumerate(hhs, start=1):
        submission_id += rng.randint(1, 40)
        row: list[object] = []
        for _, name, option in cols:
            value = h.values[name]
            row.append(value if option is None else int(option in str(value).split()))
        row += [submission_id, h.uuid, h.submission_time.isoformat(timespec="seconds"), None, index]
        main.append(row)
        for p in h.members:
            member_index += 1
            members.append([p.relation, p.sex, round_date.year - p.age, "yes" if p.mobility_impaired else "no",
                            p.occupation, p.qualification, member_index, KOBO_MAIN_SHEET, index, h.uuid])
    return [(KOBO_MAIN_SHEET, main), (KOBO_MEMBERS_SHEET, members)]


def capacity_workbook(offers: Sequence[dict[str, object]]) -> Workbook:
    wb = Workbook()
    ws = wb.active
    ws.title = CAPACITY_SHEET
    ws.append(list(CAPACITY_FIELDS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    text_cols = {CAPACITY_FIELDS.index(f) + 1 for f in ("offer_id", "ags")}
    date_cols = {CAPACITY_FIELDS.index(f) + 1 for f in ("valid_from", "valid_until")}
    for r, offer in enumerate(offers, start=2):
        ws.append([offer[f] for f in CAPACITY_FIELDS])
        for c in text_cols:
            ws.cell(r, c).number_format = "@"  # AGS stays text in Excel, leading zeros kept
        for c in date_cols:
            ws.cell(r, c).number_format = "DD.MM.YYYY"
    ws.freeze_panes = "A2"
    for idx, name in enumerate(CAPACITY_FIELDS, start=1):
        ws.column_dimensions[ws.cell(1, idx).column_letter].width = max(10, len(name) + 2)
    info = wb.create_sheet(INSTRUCTIONS_SHEET)
    info.column_dimensions["A"].width = 110
    for line in _INSTRUCTIONS:
        info.append([line])
        info.cell(info.max_row, 1).alignment = Alignment(wrap_text=True)
    info.cell(1, 1).font = Font(bold=True, size=14)
    return wb




def save_reproducibly(wb: Workbook, path: Path) -> None:
    write_atomically(path, workbook_bytes(wb, _CREATOR))


def _write_zip(path: Path, entries: dict[str, bytes]) -> None:
    write_atomically(path, zip_bytes(entries))


# A minimal SpreadsheetML package with a shared-string table, as export tools write it. openpyxl (without lxml)
# needs ~25 s for the 10,000-household export; writing the XML directly takes about a second.
_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_STYLES_XML = (
    f'{_XML_DECL}<styleSheet xmlns="{_NS_MAIN}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font>'
    '</fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
    'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/>'
    '</border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    '</cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)


def _xml_text(text: str) -> str:
    return xml_escape(_ILLEGAL_XML.sub("", text))


def _sheet_xml(rows: Sequence[Sequence[object]], strings: dict[str, int]) -> str:
    width = max(len(r) for r in rows)
    letters = [get_column_letter(i + 1) for i in range(width)]
    out = [f'{_XML_DECL}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">',
           f'<dimension ref="A1:{letters[-1]}{len(rows)}"/>',
           '<sheetViews><sheetView workbookViewId="0"/></sheetViews><sheetFormatPr defaultRowHeight="15"/>',
           "<sheetData>"]
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                idx = strings.setdefault(value, len(strings))
                cells.append(f'<c r="{letters[c]}{r}" t="s"><v>{idx}</v></c>')
            elif isinstance(value, int) and not isinstance(value, bool):
                cells.append(f'<c r="{letters[c]}{r}"><v>{value}</v></c>')
            else:
                raise TypeError(f"cell {letters[c]}{r}: only str and int are written, not {type(value).__name__}")
        out.append(f'<row r="{r}">{"".join(cells)}</row>')
    out.append('</sheetData><pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" '
               'footer="0.5"/></worksheet>')
    return "".join(out)


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[Sequence[object]]]]) -> None:
    """Write sheets of str/int cells (None = empty) as an XLSX file with shared strings."""
    strings: dict[str, int] = {}
    entries = {f"xl/worksheets/sheet{i}.xml": _sheet_xml(rows, strings).encode()
               for i, (_, rows) in enumerate(sheets, start=1)}
    total = sum(1 for _, rows in sheets for row in rows for v in row if isinstance(v, str))
    si = "".join(f'<si><t xml:space="preserve">{_xml_text(s)}</t></si>' if s != s.strip()
                 else f"<si><t>{_xml_text(s)}</t></si>" for s in strings)
    entries["xl/sharedStrings.xml"] = (f'{_XML_DECL}<sst xmlns="{_NS_MAIN}" count="{total}" '
                                       f'uniqueCount="{len(strings)}">{si}</sst>').encode()
    n = len(sheets)
    sheet_list = "".join(f'<sheet name="{xml_escape(title)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, (title, _) in enumerate(sheets, start=1))
    entries["xl/workbook.xml"] = (f'{_XML_DECL}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}"><bookViews>'
                                  f'<workbookView activeTab="0"/></bookViews><sheets>{sheet_list}</sheets>'
                                  "</workbook>").encode()
    rels = "".join(f'<Relationship Id="rId{i}" Type="{_NS_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                   for i in range(1, n + 1))
    rels += (f'<Relationship Id="rId{n + 1}" Type="{_NS_REL}/styles" Target="styles.xml"/>'
             f'<Relationship Id="rId{n + 2}" Type="{_NS_REL}/sharedStrings" Target="sharedStrings.xml"/>')
    entries["xl/_rels/workbook.xml.rels"] = (
        f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">{rels}</Relationships>').encode()
    entries["xl/styles.xml"] = _STYLES_XML.encode()
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    entries["docProps/core.xml"] = (
        f'{_XML_DECL}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:creator>{_CREATOR}</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>').encode()
    entries["docProps/app.xml"] = (f'{_XML_DECL}<Properties xmlns="http://schemas.openxmlformats.org/'
                                   f'officeDocument/2006/extended-properties"><Application>{_CREATOR}'
                                   "</Application></Properties>").encode()
    entries["_rels/.rels"] = (
        f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
        f'<Relationship Id="rId2" Type="{_NS_PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
        f'<Relationship Id="rId3" Type="{_NS_REL}/extended-properties" Target="docProps/app.xml"/>'
        "</Relationships>").encode()
    overrides = [("/xl/workbook.xml", "officedocument.spreadsheetml.sheet.main+xml")]
    overrides += [(f"/xl/worksheets/sheet{i}.xml", "officedocument.spreadsheetml.worksheet+xml")
                  for i in range(1, n + 1)]
    overrides += [("/xl/styles.xml", "officedocument.spreadsheetml.styles+xml"),
                  ("/xl/sharedStrings.xml", "officedocument.spreadsheetml.sharedStrings+xml"),
                  ("/docProps/core.xml", "package.core-properties+xml"),
                  ("/docProps/app.xml", "officedocument.extended-properties+xml")]
    types = "".join(f'<Override PartName="{part}" ContentType="{_CT}{ct}"/>' for part, ct in overrides)
    entries["[Content_Types].xml"] = (
        f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{_CT}package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f"{types}</Types>").encode()
    _write_zip(path, entries)
