"""The forms we hand out: the household interview XLSForm (de/uk/en) and the municipal capacity XLSX template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from rematch_pipeline import glossary
from rematch_pipeline.contract import (
    AGS_PATTERN,
    CAPACITY_COUNT_FIELDS,
    CAPACITY_FIELDS,
    CAPACITY_SELECT_MULTIPLE,
    CHOICES,
    CONTACT_NAME_MAX_LENGTH,
    EARLIEST_BIRTH_YEAR,
    GERMAN_LEVELS,
    LANGUAGES,
    MEDICAL_NEEDS,
    MIN_PLACES_PERSONS,
    OCCUPATIONS,
    PETS,
    PREF_SETTLEMENTS,
    QUALIFICATIONS,
    RELATIONS,
    SEXES,
    WEIGHT_ASPECTS,
    WEIGHT_RANGE,
)
from rematch_pipeline.ingest.readers import TEMPLATE_INSTRUCTIONS_SHEET
from rematch_pipeline.reproducible import workbook_bytes, write_atomically

_CREATOR = "Re:Match"

FORM_ID = "rematch_household"
FORM_VERSION = "2026120402"  # a new version whenever a label changes
XLSFORM_FILE = "rematch_household.xlsx"
TEMPLATE_FILE = "rematch_capacity_template.xlsx"
CAPACITY_SHEET = "capacity"
INSTRUCTIONS_SHEET = TEMPLATE_INSTRUCTIONS_SHEET
LANGS = ("German (de)", "Ukrainian (uk)", "English (en)")
TEMPLATE_ROWS = 500  # rows of the capacity sheet that carry the dropdowns and checks
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV/formula injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# (de, uk, en) labels; the German one of every concept the packets and the report name too is the glossary's.
_L = tuple[str, str, str]


def _de(german: Mapping[str, str], uk_en: Mapping[str, tuple[str, str]]) -> dict[str, _L]:
    return {code: (german[code], uk, en) for code, (uk, en) in uk_en.items()}


_CHOICES: dict[str, dict[str, _L]] = {
    "yes_no": {"yes": ("Ja", "Так", "Yes"), "no": ("Nein", "Ні", "No")},
    "languages": _de(glossary.LANGUAGES, {
        "uk": ("Українська", "Ukrainian"), "ru": ("Російська", "Russian"), "en": ("Англійська", "English"),
        "de": ("Німецька", "German"), "pl": ("Польська", "Polish"), "other": ("Інша", "Other"),
    }),
    "german_level": _de(glossary.GERMAN_LEVELS, {
        "none": ("Не володію", "None"), "a1": ("A1", "A1"), "a2": ("A2", "A2"), "b1": ("B1", "B1"),
        "b2_plus": ("B2 або вище", "B2 or better"),
    }),
    "medical_needs": _de({**glossary.MEDICAL_SERVICES, "none": "Keine"}, {
        "dialysis": ("Діаліз", "Dialysis"), "oncology": ("Онкологія", "Oncology"),
        "psychotherapy": ("Психотерапія", "Psychotherapy"),
        "paediatric_specialist": ("Дитячий спеціаліст", "Paediatric specialist"),
        "diabetes_care": ("Лікування діабету", "Diabetes care"), "none": ("Немає", "None"),
    }),
    "pets": _de(glossary.PET_KINDS, {"none": ("Немає", "None"), "cat": ("Кіт", "Cat"), "dog": ("Собака", "Dog"),
                                     "other": ("Інша тварина", "Other animal")}),
    "pref_settlement": _de(glossary.SETTLEMENTS, {
        "big_city": ("Велике місто", "Big city"), "mid_city": ("Середнє місто", "Mid-sized city"),
        "small_town": ("Невелике місто", "Small town"), "rural": ("Село", "Rural"), "any": ("Без різниці", "Any"),
    }),
    "relation": _de(glossary.RELATIONS, {
        "head": ("Голова домогосподарства", "Head of household"), "spouse": ("Чоловік/дружина", "Spouse or partner"),
        "child": ("Дитина", "Child"), "parent": ("Батько/мати", "Parent"), "sibling": ("Брат/сестра", "Sibling"),
        "other": ("Інше", "Other"),
    }),
    "sex": _de(glossary.SEXES, {"female": ("жіноча", "female"), "male": ("чоловіча", "male"),
                                "diverse": ("інша", "diverse")}),
    "occupation": _de(glossary.OCCUPATIONS, {
        "health_care": ("Охорона здоров'я", "Health care"), "education": ("Освіта", "Education"), "it": ("ІТ", "IT"),
        "engineering": ("Інженерія", "Engineering"), "construction": ("Будівництво", "Construction"),
        "hospitality": ("Готельно-ресторанна справа", "Hospitality"), "manufacturing": ("Виробництво", "Manufacturing"),
        "logistics": ("Логістика", "Logistics"), "agriculture": ("Сільське господарство", "Agriculture"),
        "retail": ("Торгівля", "Retail"), "public_admin": ("Державне управління", "Public administration"),
        "other": ("Інше", "Other"), "none": ("Не працює", "None"),
    }),
    "qualification": _de(glossary.QUALIFICATIONS, {
        "none": ("Без освіти", "None"), "vocational": ("Професійна освіта", "Vocational"),
        "bachelor": ("Бакалавр", "Bachelor"), "master_plus": ("Магістр або вище", "Master or higher"),
    }),
}
# The choice lists must be the contract's lists, in its order.
assert tuple(_CHOICES["languages"]) == LANGUAGES and tuple(_CHOICES["german_level"]) == GERMAN_LEVELS
assert tuple(_CHOICES["medical_needs"]) == MEDICAL_NEEDS and tuple(_CHOICES["pets"]) == PETS
assert tuple(_CHOICES["pref_settlement"]) == PREF_SETTLEMENTS and tuple(_CHOICES["relation"]) == RELATIONS
assert tuple(_CHOICES["sex"]) == SEXES and tuple(_CHOICES["occupation"]) == OCCUPATIONS
assert tuple(_CHOICES["qualification"]) == QUALIFICATIONS

_WEIGHT_LABELS: dict[str, _L] = _de({k: t.de for k, t in glossary.ASPECTS.items()}, {
    "work": ("Робота", "Work"), "education": ("Освіта і школа", "Education"),
    "community": ("Українська громада", "Ukrainian community"), "healthcare": ("Медична допомога", "Health care"),
    "housing": ("Житло", "Housing"), "culture": ("Культура і дозвілля", "Culture and leisure"),
})
_LOW, _HIGH = WEIGHT_RANGE
_RANGE_0_5: _L = (f"Bitte {_LOW} bis {_HIGH} eingeben.", f"Введіть число від {_LOW} до {_HIGH}.",
                  f"Enter {_LOW} to {_HIGH}.")
_ONE_HEAD: _L = ("Die erste Person ist der Haushaltsvorstand, keine weitere Person.",
                 "Перша особа — голова домогосподарства, інші — ні.",
                 "The first person is the head of household, and no one else.")

# type, name, labels, required, constraint, constraint message, relevant, appearance
_Q = tuple[str, str, _L | None, str, str, _L | None, str, str]


def _survey() -> list[_Q]:
    q: list[_Q] = [
        ("start", "start", None, "", "", None, "", ""), ("end", "end", None, "", "", None, "", ""),
        ("text", "case_id", ("Fallnummer", "Номер справи", "Case ID"), "yes",
         r"regex(., '^[A-Za-z0-9][A-Za-z0-9_.\-]*$')",
         ("Nur Buchstaben, Ziffern, - _ . (z. B. RM-2026-00042).", "Лише літери, цифри, - _ . (напр. RM-2026-00042).",
          "Letters, digits, - _ . only (e.g. RM-2026-00042)."), "", ""),
        ("date", "interview_date", ("Datum des Gesprächs", "Дата співбесіди", "Interview date"), "yes",
         ". <= today()", ("Das Datum liegt in der Zukunft.", "Дата в майбутньому.", "The date is in the future."),
         "", ""),
        ("text", "interview_location", ("Ort des Gesprächs", "Місце співбесіди", "Interview location"), "", "", None,
         "", ""),
        ("select_one yes_no", "consent_matching",
         ("Einverständnis mit der Vermittlung an eine Kommune", "Згода на підбір громади",
          "Consent to being matched to a municipality"), "yes", "", None, "", ""),
        ("note", "note_no_matching",
         ("Ohne Einverständnis nimmt der Haushalt an keiner Vermittlungsrunde teil.",
          "Без згоди домогосподарство не бере участі в підборі.",
          "Without consent the household enters no matching round."), "", "", None,
         "${consent_matching} = 'no'", ""),
        ("select_one yes_no", "consent_health_share",
         ("Einverständnis, Gesundheitsangaben an die Kommune weiterzugeben",
          "Згода на передачу даних про здоров'я громаді", "Consent to share health details with the municipality"),
         "yes", "", None, "", ""),
        ("text", "contact_name", ("Name, mit dem der Haushalt angesprochen werden möchte",
                                  "Ім'я, яким домогосподарство хоче, щоб до нього зверталися",
                                  "Name the household wants to be addressed by"), "",
         f"string-length(.) <= {CONTACT_NAME_MAX_LENGTH}",
         (f"Höchstens {CONTACT_NAME_MAX_LENGTH} Zeichen.", f"Не більше {CONTACT_NAME_MAX_LENGTH} символів.",
          f"At most {CONTACT_NAME_MAX_LENGTH} characters."), "", ""),
        ("text", "contact_phone", ("Telefon", "Телефон", "Phone"), "", "", None, "", "numbers"),
        ("text", "contact_email", ("E-Mail", "Ел. пошта", "Email"), "", r"regex(., '^[^@\s]+@[^@\s]+\.[^@\s]+$')",
         ("Keine gültige E-Mail-Adresse.", "Недійсна адреса ел. пошти.", "Not a valid email address."), "", ""),
        ("select_multiple languages", "languages", ("Sprachen", "Мови", "Languages"), "yes", "count-selected(.) >= 1",
         ("Mindestens eine Sprache.", "Щонайменше одна мова.", "At least one language."), "", ""),
        ("select_one german_level", "german_level", ("Deutschkenntnisse", "Рівень німецької", "German level"),
         "yes", "", None, "", ""),
        ("begin_group", "grp_needs", ("Bedarfe", "Потреби", "Needs"), "", "", None, "", "field-list"),
        ("select_one yes_no", "wheelchair_access",
         ("Rollstuhlgerechte Wohnung nötig", "Потрібне житло для візка", "Needs a wheelchair-accessible unit"),
         "yes", "", None, "", ""),
        ("select_multiple medical_needs", "medical_needs",
         ("Medizinische Versorgung nötig", "Потрібна медична допомога", "Medical needs"), "yes",
         "not(selected(., 'none') and count-selected(.) > 1)",
         ("'Keine' schließt andere Angaben aus.", "'Немає' виключає інші варіанти.", "'None' excludes the others."),
         "", ""),
        ("note", "note_health_private",
         ("Gesundheitsangaben werden nicht an die Kommune weitergegeben, aber bei der Vermittlung berücksichtigt.",
          "Дані про здоров'я не передаються громаді, але враховуються під час підбору.",
          "Health details are not shared with the municipality, but the matching respects them."), "", "", None,
         "${consent_health_share} = 'no'", ""),
        ("select_one pets", "pets", ("Haustiere", "Домашні тварини", "Pets"), "yes", "", None, "", ""),
        ("end_group", "", None, "", "", None, "", ""),
        ("begin_group", "grp_prefs", ("Wünsche", "Побажання", "Preferences"), "", "", None, "", "field-list"),
        ("select_one pref_settlement", "pref_settlement", ("Bevorzugter Wohnort", "Бажаний тип населеного пункту",
                                                           "Preferred kind of place"), "yes", "", None, "", ""),
    ]
    for aspect in WEIGHT_ASPECTS:
        de, uk, en = _WEIGHT_LABELS[aspect]
        q.append(("integer", f"weight_{aspect}", (f"Wie wichtig: {de} ({_LOW}-{_HIGH})",
                                                 f"Наскільки важливо: {uk} ({_LOW}-{_HIGH})",
                                                 f"How important: {en} ({_LOW}-{_HIGH})"), "yes",
                  f". >= {_LOW} and . <= {_HIGH}", _RANGE_0_5, "", ""))
    q += [
        ("end_group", "", None, "", "", None, "", ""),
        ("text", "ties_ags", ("AGS eines Ortes mit Verwandten/Freunden (8 Ziffern)",
                              "AGS громади з родичами/друзями (8 цифр)",
                              "AGS of a place with relatives or friends (8 digits)"), "",
         f"regex(., '^{AGS_PATTERN}$')", ("Genau 8 Ziffern.", "Рівно 8 цифр.", "Exactly 8 digits."), "", "numbers"),
        ("text", "notes", ("Anmerkungen", "Примітки", "Notes"), "", "", None, "", "multiline"),
        ("begin_repeat", "members", ("Personen im Haushalt", "Члени домогосподарства", "Household members"), "", "",
         None, "", ""),
        ("select_one relation", "relation", ("Beziehung zum Haushaltsvorstand", "Стосунок до голови",
                                             "Relation to the head"), "yes",
         "(position(..) = 1 and . = 'head') or (position(..) > 1 and . != 'head')", _ONE_HEAD, "", ""),
        ("select_one sex", "sex", ("Geschlecht", "Стать", "Sex"), "yes", "", None, "", ""),
        ("integer", "birth_year", ("Geburtsjahr", "Рік народження", "Birth year"), "yes",
         f". >= {EARLIEST_BIRTH_YEAR} and . <= int(format-date(today(), '%Y'))",
         (f"{EARLIEST_BIRTH_YEAR} bis heute.", f"Від {EARLIEST_BIRTH_YEAR} до поточного року.",
          f"{EARLIEST_BIRTH_YEAR} up to the current year."), "", ""),
        ("select_one yes_no", "mobility_impaired", ("Gehbehindert", "Обмежена мобільність", "Mobility impaired"),
         "yes", "", None, "", ""),
        ("select_one occupation", "occupation", ("Beruf", "Професія", "Occupation"), "yes", "", None, "", ""),
        ("select_one qualification", "qualification", ("Abschluss", "Освіта", "Qualification"), "yes", "", None,
         "", ""),
        ("end_repeat", "", None, "", "", None, "", ""),
    ]
    return q


def safe_text(value: Any) -> Any:
    """A string that a spreadsheet program would run as a formula, made inert with a leading apostrophe (CSV)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def put(ws: Worksheet, row: int, col: int, value: Any) -> None:
    """Write a cell; strings are stored as text, never as formulas (openpyxl treats a leading '=' as a formula)."""
    cell = ws.cell(row, col, value)
    if isinstance(value, str):
        cell.data_type = "s"


def _append(ws: Worksheet, values: Sequence[Any]) -> None:
    row = ws.max_row + 1 if ws.max_row > 1 or ws.cell(1, 1).value is not None else 1
    for col, value in enumerate(values, start=1):
        if value not in (None, ""):
            put(ws, row, col, value)


def xlsform_workbook() -> Workbook:
    wb = Workbook()
    survey = wb.active
    survey.title = "survey"
    _append(survey, ["type", "name", *(f"label::{lang}" for lang in LANGS), "required", "constraint",
                     *(f"constraint_message::{lang}" for lang in LANGS), "relevant", "appearance"])
    for typ, name, labels, required, constraint, message, relevant, appearance in _survey():
        _append(survey, [typ, name, *(labels or ("", "", "")), required, constraint, *(message or ("", "", "")),
                         relevant, appearance])
    choices = wb.create_sheet("choices")
    _append(choices, ["list_name", "name", *(f"label::{lang}" for lang in LANGS)])
    for list_name, options in _CHOICES.items():
        for name, labels in options.items():
            _append(choices, [list_name, name, *labels])
    settings = wb.create_sheet("settings")
    _append(settings, ["form_title", "form_id", "name", "version", "default_language", "instance_name"])
    _append(settings, ["Re:Match Haushaltsgespräch", FORM_ID, FORM_ID, FORM_VERSION, LANGS[0],
                       "concat(${case_id}, '')"])
    for ws in (survey, choices, settings):
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
    return wb


_DIM = {k: t.de for k, t in glossary.DIMENSIONS.items()}
CAPACITY_INSTRUCTIONS = (
    "Re:Match – Kapazitätsmeldung der Kommune",
    "Bitte tragen Sie im Blatt „capacity“ eine Zeile pro Angebot ein. Spaltennamen und Reihenfolge nicht ändern.",
    "offer_id: eindeutige Kennung des Angebots; eine erneute Meldung mit derselben Kennung ersetzt die frühere.",
    "ags: Amtlicher Gemeindeschlüssel, genau 8 Ziffern, als Text (führende Null behalten, z. B. 01002000).",
    "state: Länderkürzel (SH HH NI HB NW HE RP BW BY SL BE BB MV SN ST TH), passend zu den ersten beiden AGS-Ziffern.",
    "settlement_type: big_city, mid_city, small_town oder rural.",
    "valid_from / valid_until: Zeitraum, in dem das Angebot gilt (Datum, TT.MM.JJJJ).",
    f"places_persons ({_DIM['places_persons']}): wie viele Personen aufgenommen werden können "
    f"(mindestens {MIN_PLACES_PERSONS}).",
    f"units_1_room … units_4plus_rooms: freie Wohnungen nach Zimmerzahl; units_wheelchair "
    f"({_DIM['units_wheelchair']}) und units_pets_allowed ({_DIM['units_pets_allowed']}) zählen zu diesen Wohnungen.",
    f"kita_u3 ({_DIM['kita_u3']}, 0–2 Jahre) / kita_ue3 ({_DIM['kita_ue3']}, 3–5 Jahre); school_primary "
    f"({_DIM['school_primary']}, 6–9 Jahre) / school_secondary ({_DIM['school_secondary']}, 10–17 Jahre).",
    f"language_course_seats ({_DIM['language_course_seats']}): für Erwachsene (18–64 Jahre) unter Sprachniveau B1.",
    "medical_services (dialysis oncology psychotherapy paediatric_specialist diabetes_care) und "
    "job_sectors_shortage (Berufsfelder mit Bedarf): mehrere Werte durch Leerzeichen trennen.",
    "ukrainian_community: none, small oder large.",
    "contact_name / contact_email: Ansprechperson, an die das Vermittlungspaket geschickt wird.",
)
_LIST_FIELDS = {f: CHOICES[f] for f in ("state", "settlement_type", "ukrainian_community")}
_MULTI_FIELDS = CAPACITY_SELECT_MULTIPLE


def _column_range(field: str, rows: int) -> str:
    from openpyxl.utils import get_column_letter

    letter = get_column_letter(CAPACITY_FIELDS.index(field) + 1)
    return f"{letter}2:{letter}{rows + 1}"


def capacity_template(offers: Sequence[dict[str, Any]] = (), rows: int = TEMPLATE_ROWS) -> Workbook:
    """The capacity sheet (header, dropdowns and checks on the first `rows` rows, `offers` filled in) + instructions."""
    wb = Workbook()
    ws = wb.active
    ws.title = CAPACITY_SHEET
    for col, name in enumerate(CAPACITY_FIELDS, start=1):
        put(ws, 1, col, name)
        ws.cell(1, col).font = Font(bold=True)
        ws.column_dimensions[ws.cell(1, col).column_letter].width = max(10, len(name) + 2)
    text_cols = {CAPACITY_FIELDS.index(f) + 1 for f in ("offer_id", "ags")}
    date_cols = {CAPACITY_FIELDS.index(f) + 1 for f in ("valid_from", "valid_until")}
    rows = max(rows, len(offers))
    for r in range(2, rows + 2):
        for c in text_cols:
            ws.cell(r, c).number_format = "@"  # AGS stays text in Excel, leading zeros kept
        for c in date_cols:
            ws.cell(r, c).number_format = "DD.MM.YYYY"
    for r, offer in enumerate(offers, start=2):
        for c, name in enumerate(CAPACITY_FIELDS, start=1):
            if offer.get(name) is not None:
                put(ws, r, c, offer[name])
    checks = []
    for name, options in _LIST_FIELDS.items():
        dv = DataValidation(type="list", formula1='"' + ",".join(options) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle=name, error=f"{name}: bitte aus der Liste wählen.")
        dv.add(_column_range(name, rows))
        checks.append(dv)
    for name in CAPACITY_COUNT_FIELDS:
        low = MIN_PLACES_PERSONS if name == "places_persons" else 0
        dv = DataValidation(type="whole", operator="greaterThanOrEqual", formula1=str(low), allow_blank=True,
                            showErrorMessage=True, errorTitle=name, error=f"{name}: ganze Zahl ab {low}.")
        dv.add(_column_range(name, rows))
        checks.append(dv)
    dv = DataValidation(type="textLength", operator="equal", formula1="8", allow_blank=True, showErrorMessage=True,
                        errorTitle="ags", error="ags: genau 8 Ziffern, als Text (führende Null behalten).")
    dv.add(_column_range("ags", rows))
    checks.append(dv)
    for name in ("valid_from", "valid_until"):
        dv = DataValidation(type="date", operator="between", formula1="DATE(2020,1,1)", formula2="DATE(2100,12,31)",
                            allow_blank=True, showErrorMessage=True, errorTitle=name,
                            error=f"{name}: ein Datum (TT.MM.JJJJ).")
        dv.add(_column_range(name, rows))
        checks.append(dv)
    for name, options in _MULTI_FIELDS.items():
        dv = DataValidation(allow_blank=True, showInputMessage=True, promptTitle=name,
                            prompt="Mehrere Werte durch Leerzeichen trennen: " + " ".join(options))
        dv.add(_column_range(name, rows))
        checks.append(dv)
    for dv in checks:
        ws.add_data_validation(dv)
    ws.freeze_panes = "A2"
    info = wb.create_sheet(INSTRUCTIONS_SHEET)
    info.column_dimensions["A"].width = 110
    for i, line in enumerate(CAPACITY_INSTRUCTIONS, start=1):
        put(info, i, 1, line)
        info.cell(i, 1).alignment = Alignment(wrap_text=True)
    info.cell(1, 1).font = Font(bold=True, size=14)
    return wb


def export_forms(out_dir: Path) -> tuple[Path, Path]:
    """Write the XLSForm and the empty capacity template into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    form, template = out_dir / XLSFORM_FILE, out_dir / TEMPLATE_FILE
    # The same software gives the same bytes, whenever it runs.
    write_atomically(form, workbook_bytes(xlsform_workbook(), _CREATOR))
    write_atomically(template, workbook_bytes(capacity_template(), _CREATOR))
    return form, template
