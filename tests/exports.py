"""Small builders of export files as the tools write them: Kobo XLSX/CSV, ODK Central ZIP, capacity, decisions."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

from rematch_pipeline.contract import (
    CAPACITY_FIELDS,
    DECISION_FIELDS,
    HOUSEHOLD_FIELDS,
    HOUSEHOLD_OPTIONAL_FIELDS,
    MEMBER_FIELDS,
)
from rematch_pipeline.reproducible import FIXED_TIME, workbook_bytes

GROUP = {"wheelchair_access": "grp_needs", "medical_needs": "grp_needs", "pets": "grp_needs",
         "pref_settlement": "grp_prefs"}
OPTIONS = {"languages": ("uk", "ru", "en", "de", "pl", "other"),
           "medical_needs": ("dialysis", "oncology", "psychotherapy", "paediatric_specialist", "diabetes_care",
                             "none")}
KOBO_SYSTEM = ("_id", "_uuid", "_submission_time", "_validation_status", "_index")
MEMBER_SYSTEM = ("_index", "_parent_table_name", "_parent_index", "_submission__uuid")


def household(case_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_id": case_id, "interview_date": "2026-11-01", "interview_location": "Warszawa",
        "consent_matching": "yes", "consent_health_share": "no", "contact_phone": "+48 600 000 000",
        "contact_email": "family@example.org", "languages": "uk ru", "german_level": "a1",
        "wheelchair_access": "no", "medical_needs": "none", "pets": "none", "pref_settlement": "any",
        "weight_work": "3", "weight_education": "2", "weight_community": "1", "weight_healthcare": "0",
        "weight_housing": "5", "weight_culture": "4", "ties_ags": None, "notes": "Needs ground floor.",
        "_uuid": f"uuid-{case_id}", "_submission_time": "2026-11-02T10:15:00",
    }
    row.update(overrides)
    return row


def member(relation: str = "head", birth_year: Any = "1985", **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"relation": relation, "sex": "female", "birth_year": birth_year,
                           "mobility_impaired": "no", "occupation": "health_care", "qualification": "vocational"}
    row.update(overrides)
    return row


def canonical(row: dict[str, Any], source_row: str = "2") -> dict[str, str | None]:
    """An export row as the reader hands it to validation: text values, the export's own system columns gone, the
    sender's row number added."""
    kept = {k: (None if v is None else str(v)) for k, v in row.items() if k not in KOBO_SYSTEM}
    return {**kept, "source_row": source_row}


def family(*relations: str) -> list[dict[str, Any]]:
    return [member(r, str(1980 + 5 * i)) for i, r in enumerate(relations)]


def household_fields(households: Sequence[dict[str, Any]]) -> list[str]:
    """The columns an export of these households has: the shared contract's, and an optional field of this project
    (`contact_name`) only where a household gives it, as the outside senders' files have it not."""
    return [n for n in HOUSEHOLD_FIELDS if n not in HOUSEHOLD_OPTIONAL_FIELDS or any(n in h for h in households)]


def _kobo_header(fields: Sequence[str], sep: str = "/", option_columns: bool = True,
                 ) -> list[tuple[str, str, str | None]]:
    cols: list[tuple[str, str, str | None]] = []
    for name in fields:
        header = f"{GROUP[name]}{sep}{name}" if name in GROUP else name
        cols.append((header, name, None))
        if option_columns:
            cols += [(f"{header}{sep}{o}", name, o) for o in OPTIONS.get(name, ())]
    return cols


def kobo_main_rows(households: Sequence[dict[str, Any]], option_columns: bool = True) -> list[list[Any]]:
    cols = _kobo_header(household_fields(households), option_columns=option_columns)
    rows: list[list[Any]] = [[h for h, _, _ in cols] + list(KOBO_SYSTEM)]
    for i, h in enumerate(households, start=1):
        cells: list[Any] = []
        for _, name, option in cols:
            value = h.get(name)
            cells.append(value if option is None else ("1" if option in str(value or "").split() else "0"))
        cells += [str(1000 + i), h.get("_uuid"), h.get("_submission_time"), None, str(i)]
        rows.append(cells)
    return rows


def kobo_xlsx(households: Sequence[dict[str, Any]], members: dict[str, list[dict[str, Any]]],
              hxl: bool = False, extra: dict[str, list[list[Any]]] | None = None,
              main_rows: list[list[Any]] | None = None) -> bytes:
    """members maps a household's _uuid to its member rows (a uuid nobody has makes orphans); `extra` sheets follow
    the two of the export; `main_rows` replaces the main sheet as written (header included)."""
    main = kobo_main_rows(households)
    if hxl:
        main.insert(1, ["#beneficiary+id"] + [None] * (len(main[0]) - 1))
    m_rows: list[list[Any]] = [list(MEMBER_FIELDS) + list(MEMBER_SYSTEM)]
    index = 0
    parent_index = {h.get("_uuid"): i for i, h in enumerate(households, start=1)}
    for uuid, people in members.items():
        for p in people:
            index += 1
            m_rows.append([p.get(f) for f in MEMBER_FIELDS] + [index, "rematch_household",
                                                               parent_index.get(uuid, 999), uuid])
    return xlsx_bytes({"rematch_household": main if main_rows is None else main_rows, "members": m_rows,
                       **(extra or {})})


def xlsx_bytes(sheets: dict[str, list[list[Any]]]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"  # data, not a formula
    return workbook_bytes(wb, "tests")  # fixed timestamps: the same rows give the same file, the same sha256


def kobo_csv(households: Sequence[dict[str, Any]], option_columns: bool = True, bom: bool = True) -> bytes:
    """As KoboToolbox writes it: `;`, every field quoted, CRLF, UTF-8 (with BOM by default)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for row in kobo_main_rows(households, option_columns):
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8")


def odk_zip(households: Sequence[dict[str, Any]], members: dict[str, list[dict[str, Any]]],
            form_id: str = "rematch_household") -> bytes:
    """ODK Central: comma CSVs, `-` group paths, KEY / PARENT_KEY; members keyed by the household's _uuid."""
    fields = household_fields(households)
    main_cols = [f"{GROUP[n]}-{n}" if n in GROUP else n for n in fields]
    main = io.StringIO()
    w = csv.writer(main, lineterminator="\n")
    w.writerow(["SubmissionDate", *main_cols, "meta-instanceID", "KEY", "SubmitterID", "ReviewState"])
    for h in households:
        key = f"uuid:{h['_uuid']}"
        w.writerow([h.get("_submission_time"), *("" if h.get(n) is None else h.get(n) for n in fields),
                    key, key, "5", ""])
    rep = io.StringIO()
    w = csv.writer(rep, lineterminator="\n")
    w.writerow([f"members-{f}" for f in MEMBER_FIELDS] + ["PARENT_KEY", "KEY"])
    for uuid, people in members.items():
        for i, p in enumerate(people, start=1):
            w.writerow([p.get(f) or "" for f in MEMBER_FIELDS] + [f"uuid:{uuid}", f"uuid:{uuid}/members[{i}]"])
    return zip_bytes({f"{form_id}.csv": main.getvalue().encode(), f"{form_id}-members.csv": rep.getvalue().encode()})


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """Entries in the order given (a test may depend on it), with fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6]), data,
                        compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def offer(offer_id: str = "OF-1", **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "offer_id": offer_id, "ags": "09162000", "municipality_name": "München", "state": "BY",
        "settlement_type": "big_city", "valid_from": "01.10.2026", "valid_until": "31.03.2027",
        "places_persons": "12", "units_1_room": "1", "units_2_rooms": "2", "units_3_rooms": "1",
        "units_4plus_rooms": "0", "units_wheelchair": "1", "units_pets_allowed": "2", "kita_u3": "1",
        "kita_ue3": "2", "school_primary": "3", "school_secondary": "2", "language_course_seats": "6",
        "medical_services": "dialysis oncology", "job_sectors_shortage": "health_care it",
        "ukrainian_community": "small", "contact_name": "Amt für Integration",
        "contact_email": "integration@example.de",
    }
    row.update(overrides)
    return row


def capacity_csv(offers: Sequence[dict[str, Any]], sep: str = ";", encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    writer.writerow(CAPACITY_FIELDS)
    for o in offers:
        writer.writerow(["" if o.get(f) is None else o.get(f) for f in CAPACITY_FIELDS])
    return buf.getvalue().encode(encoding)


def capacity_xlsx(offers: Sequence[dict[str, Any]]) -> bytes:
    return xlsx_bytes({"capacity": [list(CAPACITY_FIELDS), *([o.get(f) for f in CAPACITY_FIELDS] for o in offers)]})


def decision(case_id: str, round_id: str = "R-2026-11-23", **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"case_id": case_id, "round_id": round_id, "decision": "accept",
                           "decided_at": "2026-11-23T14:05", "reason": None}
    row.update(overrides)
    return row


def decisions_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DECISION_FIELDS)
    for r in rows:
        writer.writerow(["" if r.get(f) is None else r.get(f) for f in DECISION_FIELDS])
    return buf.getvalue().encode()
