"""Row-level validation of the canonical tables with Great Expectations 1.x suites, rendered as Data Docs."""

from __future__ import annotations

import functools
import html
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.checkpoint import Checkpoint
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.exceptions import DataContextError
from great_expectations.exceptions.resource_freshness import (
    ResourceFreshnessAggregateError,
    ResourceFreshnessError,
)

from rematch_pipeline import datadocs
from rematch_pipeline.canonical import hidden_characters, identifier_problem, parse_instant
from rematch_pipeline.config import DEFAULT_EXPECTATIONS_DIR, Settings
from rematch_pipeline.contract import AGS_PATTERN, DATE_PATTERN, INT_PATTERN, LAND_BY_AGS_PREFIX
from rematch_pipeline.locks import exclusive

log = logging.getLogger(__name__)

TABLES = ("households", "members", "capacity_offers", "decisions")
SITE_NAME = "rematch"
DATASOURCE_NAME = "rematch"
BATCH_DEFINITION_NAME = "whole_table"
# The Data Docs index re-reads every listed validation result on each build; cap it so runs stay fast over time.
DATA_DOCS_RESULTS_LIMIT = 50

SUBMISSION_CLOCK_SLACK = timedelta(minutes=15)  # how far ahead a sending server's clock may run
EARLIEST_INTERVIEW = date(2022, 1, 1)  # the interviews of this programme began after the war began in 2022
UNIT_COLUMNS = ("units_1_room", "units_2_rooms", "units_3_rooms", "units_4plus_rooms")

# COMPLETE gives every failing row's index label; the pandas "query" string would only repeat that list.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 20,
    "return_unexpected_index_query": False,
}


SourceFile = datadocs.SourceFile  # the file a batch came from: its pages name it


@dataclass(frozen=True)
class RowError:
    row_index: int  # the DataFrame index label of the failing row
    field: str
    rule: str
    message: str


@dataclass
class TableValidation:
    table: str
    success: bool
    evaluated_rows: int
    invalid_rows: set[int]
    row_errors: list[RowError]
    statistics: dict
    report_path: Path | None
    result: dict = field(repr=False)  # the JSON-able GX validation result
    docs: _Docs | None = field(default=None, repr=False, compare=False)  # its Data Docs page, to publish again


def load_suite_dict(table: str, expectations_dir: Path = DEFAULT_EXPECTATIONS_DIR) -> dict[str, Any]:
    """The reviewable suite file of `table` (the JSON form of a GX ExpectationSuite), as it is run: rules on health
    columns judged aside (`_shield`)."""
    if table not in TABLES:
        raise ValueError(f"no expectation suite for table {table!r}; expected one of {', '.join(TABLES)}")
    path = expectations_dir / f"{table}.json"
    stat = path.stat()
    # Parsed afresh on every call: callers may change their copy without touching the next caller's.
    return _with_storage_rules(table, _shield(json.loads(_read_suite_text(str(path), stat.st_mtime_ns, stat.st_size))))


# What the database can hold, from the tables themselves, so that SQLite (which would store anything) and PostgreSQL
# (which would refuse the whole file) give the same outcome: the row is quarantined before the store sees it.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


# Columns of the tables that the pipeline fills itself, not from a file; and a file's name for a stored column.
_NOT_FROM_FILES = frozenset({"raw_file_id", "pseudonym", "updated_at", "status", "closed_at", "purged_at", "id",
                             "source", "created_at"})
_FILE_NAME_OF = {"submission_time": "_submission_time"}


def _with_storage_rules(table: str, suite_dict: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import Integer, String

    from rematch_pipeline.db import tables as t

    db = t.metadata.tables.get(table)
    if db is None:
        return suite_dict
    # A column held to a set of values needs no more: every value of the set fits (the values of a failing row are
    # that rule's to report, not a second time as too long).
    in_set = {e["kwargs"].get("column") for e in suite_dict["expectations"]
              if e["type"] == "expect_column_values_to_be_in_set"}
    in_set |= {e["meta"]["field"] for e in suite_dict["expectations"] if (e.get("meta") or {}).get("judged_aside")
               and e["meta"]["judged_aside"]["type"] == "expect_column_values_to_be_in_set"}
    # A side of a number's range that a contract rule bounds already is that rule's to report.
    bounded: dict[str, set[str]] = {}
    for e in suite_dict["expectations"]:
        if e["type"] == "expect_column_values_to_be_between":
            field = (e.get("meta") or {}).get("field") or e["kwargs"]["column"]
            bounded.setdefault(field, set()).update(k for k in ("min_value", "max_value") if k in e["kwargs"])
    # Every column of the table a file fills, named by the suite or not (free text such as notes is stored too).
    named = [c for c in _suite_columns(suite_dict) if not c.startswith("_") and c in db.c]
    for stored in [*named, *(c.name for c in db.c if c.name not in named and c.name not in _NOT_FROM_FILES)]:
        column = _FILE_NAME_OF.get(stored, stored)
        if column in in_set:
            continue
        kind = db.c[stored].type
        sides = {"min_value", "max_value"} - bounded.get(column, set())
        if isinstance(kind, Integer) and not sides:
            continue
        if isinstance(kind, Integer):
            message = f"{column} must be a whole number from {INT_MIN} to {INT_MAX}."
            description = f"{column} fits the database: a whole number from {INT_MIN} to {INT_MAX}"
            failing = "out of range"
        elif isinstance(kind, String) and kind.length:
            message = f"{column} is longer than {kind.length} characters or holds a NUL character; correct it."
            description = f"{column} fits the database: at most {kind.length} characters, no NUL character"
            failing = f"longer than {kind.length} characters or holds a NUL character"
        elif isinstance(kind, String):
            message = f"{column} holds a NUL character; remove it."
            description = f"{column} fits the database: no NUL character"
            failing = "holds a NUL character"
        else:
            continue  # dates and yes/no: their own rules read the value
        suite_dict["expectations"].append({
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": f"_fits_{column}", "value_set": [True]},
            "description": description,
            "meta": {"rule": f"{column}_fits_storage", "field": column, "message": message, "failing_value": failing,
                     "storage": {"integer": isinstance(kind, Integer),
                                 "min": INT_MIN if "min_value" in sides else None,
                                 "max": INT_MAX if "max_value" in sides else None,
                                 "length": getattr(kind, "length", None) if isinstance(kind, String) else None}},
            "severity": "critical"})
    return suite_dict


def _fits_storage(frame: pd.DataFrame, suite_dict: Mapping[str, Any]) -> dict[str, pd.Series]:
    out: dict[str, pd.Series] = {}
    for exp in suite_dict["expectations"]:
        storage = (exp.get("meta") or {}).get("storage")
        if storage is None:
            continue
        field = exp["meta"]["field"]
        if field not in frame:  # the file has no such column: nothing of it to store, nothing to judge
            out[exp["kwargs"]["column"]] = pd.Series(None, index=frame.index, dtype=object)
            continue
        values = frame[field]
        text = values.astype(object)
        if storage["integer"]:
            number = _to_int(values)  # a value that is no whole number is another rule's to report
            low, high = storage["min"], storage["max"]
            ok_number = number.between(-np.inf if low is None else low, np.inf if high is None else high)
            out[exp["kwargs"]["column"]] = _tristate(ok_number, number.notna(), frame.index)
            continue
        ok = ~text.map(lambda v: isinstance(v, str) and "\x00" in v).astype(bool)
        if storage["length"]:
            ok &= text.map(lambda v, n=storage["length"]: not isinstance(v, str) or len(v) <= n).astype(bool)
        out[exp["kwargs"]["column"]] = _tristate(ok, values.notna(), frame.index)
    return out


# Health and disability details (contract §1). A rule on their values is judged in Python and GX sees only whether
# each row passes, so no value of these columns is ever written into a validation result or the Data Docs.
HEALTH_COLUMNS = frozenset({"medical_needs", "wheelchair_access", "mobility_impaired"})
HEALTH_VALUE_WITHHELD = "not allowed (health data: the value is not shown)"
_VALUE_RULES = frozenset({"expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
                          "expect_column_values_to_be_in_set"})


def _shield(suite_dict: dict[str, Any]) -> dict[str, Any]:
    for i, exp in enumerate(suite_dict["expectations"]):
        column = exp.get("kwargs", {}).get("column")
        if column in HEALTH_COLUMNS and exp["type"] in _VALUE_RULES:
            meta = dict(exp.get("meta") or {})
            judged = f"_ok_{meta.get('rule') or i}"
            suite_dict["expectations"][i] = {
                **exp, "type": "expect_column_values_to_be_in_set", "kwargs": {"column": judged, "value_set": [True]},
                "meta": {**meta, "field": column, "failing_value": HEALTH_VALUE_WITHHELD,
                         "judged_aside": {"type": exp["type"], "kwargs": exp["kwargs"]}}}
    return suite_dict


def _judge_aside(frame: pd.DataFrame, suite_dict: Mapping[str, Any]) -> dict[str, pd.Series]:
    """The pass/fail columns of the shielded rules, as GX would judge them (search for a regex; empty cells are
    left to the rule that requires a value)."""
    out: dict[str, pd.Series] = {}
    for exp in suite_dict["expectations"]:
        rule = (exp.get("meta") or {}).get("judged_aside")
        if not rule:
            continue
        values = frame[rule["kwargs"]["column"]]
        if rule["type"] == "expect_column_values_to_be_in_set":
            allowed = set(rule["kwargs"]["value_set"])
            ok = values.map(lambda v, allowed=allowed: v in allowed)
        else:
            ok = _str_test(values, "contains", rule["kwargs"]["regex"])
            if rule["type"] == "expect_column_values_to_not_match_regex":
                ok = ~ok
        out[exp["kwargs"]["column"]] = _tristate(ok, values.notna(), frame.index)
    return out


@functools.lru_cache(maxsize=16)
def _read_suite_text(path: str, _mtime_ns: int, _size: int) -> str:
    return Path(path).read_text(encoding="utf-8")


def _bound(value: Any) -> str:
    if isinstance(value, Mapping) and value.get("$PARAMETER") == "current_year":
        return "the current year"
    return str(value)


def rule_description(exp: Mapping[str, Any]) -> str:
    """What an expectation requires, read as the rule ("places_persons is at least 8"), as Data Docs show it.

    A suite file's own `description` comes first; the plain kinds of rule are said from their type and kwargs, so a
    bound or a value list has one home. A rule of another kind without a description is refused.
    """
    if exp.get("description"):
        return str(exp["description"])
    meta = exp.get("meta") or {}
    rule = meta.get("judged_aside") or exp  # a health column's rule, as written (GX sees only whether it held)
    kind, kwargs = rule["type"], rule.get("kwargs") or {}
    column = str(kwargs.get("column") or "")
    if not column.startswith("_"):
        if kind == "expect_column_values_to_not_be_null":
            return f"{column} is filled in"
        if kind == "expect_column_values_to_be_unique":
            return f"each {column} appears once"
        if kind == "expect_column_values_to_be_in_set":
            return f"{column} is one of: {', '.join(map(str, kwargs['value_set']))}"
    field = meta.get("field") or column.removeprefix("_").removesuffix("_int")
    if kind == "expect_column_values_to_be_between" and column == f"_{field}_int":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None and high is not None:
            return f"{field} is from {_bound(low)} to {_bound(high)}"
        if low is not None:
            return f"{field} is at least {_bound(low)}"
        if high is not None:
            return f"{field} is at most {_bound(high)}"
    raise ValueError(f"rule {meta.get('rule') or kind!r} needs a description in its suite file: what it requires, "
                     "read as a rule")


def _build_suite(suite_dict: Mapping[str, Any]) -> gx.ExpectationSuite:
    data = json.loads(json.dumps(suite_dict))  # a copy: the caller's dict stays as it was
    for exp in data["expectations"]:
        exp.pop("id", None)
        # Data Docs show an expectation's description instead of GX's wording of its type and kwargs (which names
        # the derived columns): the rule as the contract says it, not the message for a failing row.
        exp["description"] = rule_description(exp)
    data.pop("id", None)
    suite = gx.ExpectationSuite(**data)
    # GX only logs (and drops) an expectation it cannot parse; a silently shorter suite would validate less.
    if len(suite.expectations) != len(data["expectations"]):
        raise ValueError(f"suite {data['name']!r}: {len(data['expectations']) - len(suite.expectations)} "
                         "expectation(s) could not be loaded; see the GX log")
    return suite


def _suite_columns(suite_dict: Mapping[str, Any]) -> list[str]:
    cols: list[str] = []
    for exp in suite_dict["expectations"]:
        kwargs = exp.get("kwargs", {})
        for col in ([kwargs["column"]] if "column" in kwargs else []) + list(kwargs.get("column_list", [])):
            if col not in cols:
                cols.append(col)
    return cols


# --- GX context --------------------------------------------------------------------------------------------------


@dataclass
class _Project:
    context: Any  # a GX FileDataContext
    root: Path  # its folder, held alone while its stores are written
    # table -> (suite file signature, checkpoint in step with it), so unchanged suites cost no store writes
    checkpoints: dict[str, tuple[str, Checkpoint]] = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _project(gx_root: Path, data_docs: Path) -> _Project:
    """File context at `gx_root` whose only Data Docs site writes into `data_docs`; created once per process."""
    # Two workers starting at once on a new home would both write the project's configuration.
    with exclusive(gx_root):
        context: Any = gx.get_context(mode="file", context_root_dir=str(gx_root))
        config = context.get_config()
        changed = False
        site: dict[str, Any] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                                   "validation_results_limit": DATA_DOCS_RESULTS_LIMIT},
        }
        sites = dict(config.data_docs_sites or {})
        if SITE_NAME not in sites:
            context.add_data_docs_site(SITE_NAME, site)
        elif sites[SITE_NAME] != site:
            context.update_data_docs_site(SITE_NAME, site)
        if "local_site" in sites:  # the default site would render every run a second time
            context.delete_data_docs_site("local_site")
        if config.analytics_enabled is not False:
            config.analytics_enabled = False
            changed = True
        # Progress bars would clutter the Airflow task log with one line per metric batch.
        current = context.variables.progress_bars  # a ProgressBarsConfig, or a plain dict when read from the YAML file
        progress = dict(current) if isinstance(current, Mapping) else vars(current) if current else {}
        if progress.get("globally") is not False or progress.get("metric_calculations") is not False:
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            changed = True
        if changed:
            context.variables.save()
    datadocs.adopt_earlier_pages(data_docs)  # a site from before the pages were made static
    return _Project(context, gx_root)


def _suite_signature(suite: gx.ExpectationSuite) -> str:
    """What makes two suites validate the same way (ids excluded), to skip needless store writes."""
    data: Any = suite.to_json_dict()
    exps = [{k: v for k, v in e.items() if k not in ("id", "rendered_content")} for e in data["expectations"]]
    return json.dumps([data.get("meta"), data.get("notes"), exps], sort_keys=True, default=str)


def _stored_checkpoint(context: Any, name: str, signature: str) -> Checkpoint | None:
    try:
        checkpoint = context.checkpoints.get(name)
    except (DataContextError, ValueError):
        # ValueError (pydantic's): stored by another worker for an asset this process's context has not loaded yet;
        # synced again, which adds it here.
        return None
    definitions = checkpoint.validation_definitions
    same = (
        len(definitions) == 1
        and _suite_signature(definitions[0].suite) == signature
        and dict(checkpoint.result_format) == RESULT_FORMAT
        and not checkpoint.actions  # Data Docs are built after the values are made safe (`_render_docs`)
    )
    return checkpoint if same else None


def _sync_checkpoint(context: Any, table: str, suite: gx.ExpectationSuite) -> Checkpoint:
    suite = context.suites.add_or_update(suite)
    try:
        datasource = context.data_sources.get(DATASOURCE_NAME)
    except LookupError:
        datasource = context.data_sources.add_pandas(DATASOURCE_NAME)
    try:
        asset = datasource.get_asset(table)
    except LookupError:
        asset = datasource.add_dataframe_asset(table)
    try:
        batch_definition = asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except LookupError:
        batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"rematch_{table}", data=batch_definition, suite=suite)
    )
    return context.checkpoints.add_or_update(
        Checkpoint(
            name=f"rematch_{table}",
            validation_definitions=[definition],
            actions=[],
            result_format=RESULT_FORMAT,
        )
    )


def _checkpoint(project: _Project, table: str, suite_dict: Mapping[str, Any], *, refresh: bool = False) -> Checkpoint:
    """The checkpoint of `table`, in step with the suite file; store writes happen only when the suite changed.

    GX's add_or_update compares every expectation pairwise (seconds for a 60-rule suite), so the synced checkpoint
    is kept per process and the stored one reused when it already holds the same rules.
    """
    file_signature = json.dumps(suite_dict, sort_keys=True)
    cached = project.checkpoints.get(table)
    if cached and cached[0] == file_signature and not refresh:
        return cached[1]
    suite = _build_suite(suite_dict)
    with exclusive(project.root):  # another worker may be writing the same suite's files this moment
        stored = None if refresh else _stored_checkpoint(project.context, f"rematch_{table}", _suite_signature(suite))
        checkpoint = stored or _sync_checkpoint(project.context, table, suite)
    project.checkpoints[table] = (file_signature, checkpoint)
    return checkpoint


# --- derived columns ---------------------------------------------------------------------------------------------


def _str_test(s: pd.Series, test: str, *args: Any) -> pd.Series:
    """A vectorised string test that is False for empty and non-string values."""
    text = s.astype(object)
    try:
        return getattr(text.str, test)(*args).eq(True)
    except AttributeError:  # no string at all in the column
        return pd.Series(False, index=s.index)


def _matches(s: pd.Series, pattern: str) -> pd.Series:
    return _str_test(s, "fullmatch", pattern)


def _is_missing(v: object) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _cell_text(v: object) -> str | None:
    if _is_missing(v):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _normalise(s: pd.Series) -> pd.Series:
    """Values as the contract delivers them: strings, or None for empty, blank and NaN cells."""
    text = s.astype(object)
    if pd.api.types.infer_dtype(text, skipna=True) not in ("string", "empty"):
        # A reader that let pandas parse numbers: str(12) == "12" keeps the text rules meaningful. A whole float is
        # what an integer column becomes next to an empty cell, so 3.0 reads as "3"; 2.5 stays "2.5" and fails.
        text = text.map(_cell_text)
    empty = text.isna() | _str_test(text, "fullmatch", r"\s*")
    return text.where(~empty, None)


def _tristate(cond: pd.Series | np.ndarray, known: pd.Series, index: pd.Index) -> pd.Series:
    """True/False where the rule can be judged, None (skipped by GX) where another rule already reports the row."""
    values = np.asarray(cond, dtype=bool).astype(object)
    values[~np.asarray(known, dtype=bool)] = None
    return pd.Series(values, index=index, dtype=object)


def _to_int(s: pd.Series) -> pd.Series:
    ok = _matches(s, INT_PATTERN)
    return pd.to_numeric(s.astype(object).where(ok, None), errors="coerce").astype(float)


def _parse_date(v: object) -> date | None:
    if not isinstance(v, str) or re.fullmatch(DATE_PATTERN, v) is None:
        return None
    try:
        return date.fromisoformat(v)
    except ValueError:
        return None


_TIMESTAMP_RE = (r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]+)?)?"
                 r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?")


def _parse_timestamp(v: object) -> date | None:
    """The day in UTC of a timestamp when date and time are real, else None (every time is judged in UTC)."""
    when = parse_instant(v) if isinstance(v, str) else None
    return when.astimezone(UTC).date() if when is not None else None


def _judged(s: pd.Series, test: Any, index: pd.Index) -> pd.Series:
    """`test` of each given value; empty values are the required-rules' to report."""
    return _tristate(s.map(lambda v: isinstance(v, str) and bool(test(v))), s.notna(), index)


def _text_of(frame: pd.DataFrame, column: str) -> pd.Series:
    """A text column a rule reads only through a derived column; an optional one the file lacks is all empty."""
    if column in frame:
        return _normalise(frame[column])
    return pd.Series(None, index=frame.index, dtype=object)


def _derive_generic(frame: pd.DataFrame, columns: Iterable[str]) -> dict[str, pd.Series]:
    """`_<col>_int` and `_<col>_is_calendar_date` columns named by the suite, cast from their source column."""
    out: dict[str, pd.Series] = {}
    for col in columns:
        if m := re.fullmatch(r"_(.+)_int", col):
            if m.group(1) in frame:
                out[col] = _to_int(frame[m.group(1)])
        elif (m := re.fullmatch(r"_(.+)_is_calendar_date", col)) and m.group(1) in frame:
            raw = frame[m.group(1)]
            out[col] = _tristate(raw.map(_parse_date).notna(), _matches(raw, DATE_PATTERN), frame.index)
        elif (m := re.fullmatch(r"_(.+)_visible_only", col)) and m.group(1) in frame:
            out[col] = _judged(frame[m.group(1)], lambda v: identifier_problem(v) != "invisible", frame.index)
        elif m := re.fullmatch(r"_(.+)_shows_as_written", col):
            out[col] = _judged(_text_of(frame, m.group(1)), lambda v: not hidden_characters(v), frame.index)
        elif m := re.fullmatch(r"_(.+)_length", col):
            # The length alone goes to GX: a rule on the text itself would print the value (personal data) in its
            # Data Docs page.
            text = _text_of(frame, m.group(1))
            out[col] = text.map(lambda v: float(len(v)) if isinstance(v, str) else np.nan).astype(float)
        elif (m := re.fullmatch(r"_(.+)_one_script", col)) and m.group(1) in frame:
            # An invisible character is that rule's to report: judged here only on ids without one.
            ids = frame[m.group(1)]
            problem = ids.map(lambda v: identifier_problem(v) if isinstance(v, str) else "missing")
            out[col] = _tristate(problem.ne("mixed_scripts"), problem.isin([None, "mixed_scripts"]), frame.index)
    return out


def _case_ids(df: pd.DataFrame | None) -> pd.Series | None:
    if df is None or "case_id" not in df:
        return None
    return _normalise(df["case_id"])


def _derive_households(frame: pd.DataFrame, members: pd.DataFrame | None, today: date, now: datetime) -> None:
    parsed = frame["interview_date"].map(_parse_date)
    frame["_interview_not_in_future"] = _tristate(
        parsed.map(lambda d: d is not None and d <= today), parsed.notna(), frame.index
    )
    frame["_interview_not_before_2022"] = _tristate(
        parsed.map(lambda d: d is not None and d >= EARLIEST_INTERVIEW), parsed.notna(), frame.index
    )
    submitted = _normalise(frame["_submission_time"]) if "_submission_time" in frame else pd.Series(
        None, index=frame.index, dtype=object)
    frame["_submission_time_is_timestamp"] = _judged(submitted, parse_instant, frame.index)
    # A submission is judged against the moment (with a little slack for a sender's clock): one stamped later today
    # would outrank every correction sent before then.
    latest = now + SUBMISSION_CLOCK_SLACK
    submitted_at = submitted.map(lambda v: parse_instant(v) if isinstance(v, str) else None)
    frame["_submission_time_not_in_future"] = _tristate(
        submitted_at.map(lambda d: d is not None and d <= latest), submitted_at.notna(), frame.index)
    case_id = frame["case_id"].astype(object)
    member_cases = _case_ids(members)
    if members is None or member_cases is None:  # members not given: the cross-table rules cannot be judged here
        frame["_member_count"] = np.nan
        frame["_head_count"] = np.nan
        return
    counts = member_cases.value_counts()
    relation = members["relation"] if "relation" in members else pd.Series(None, index=members.index, dtype=object)
    heads = member_cases[relation.astype(object).eq("head")].value_counts()
    has_id = case_id.notna()
    member_count = case_id.map(counts).astype(float).fillna(0).where(has_id)
    frame["_member_count"] = member_count
    # A household without members is reported once (no members), not a second time as "no head".
    frame["_head_count"] = case_id.map(heads).astype(float).fillna(0).where(member_count > 0)


def _derive_members(frame: pd.DataFrame, households: pd.DataFrame | None) -> None:
    case_id = frame["case_id"].astype(object)
    is_head = frame["relation"].astype(object).eq("head").astype(int)
    frame["_head_count_in_household"] = is_head.groupby(case_id, dropna=True).transform("sum").astype(float)
    household_cases = _case_ids(households)
    if household_cases is None:
        frame["_members_parent_found"] = pd.Series(None, index=frame.index, dtype=object)
    else:
        frame["_members_parent_found"] = _tristate(
            case_id.isin(set(household_cases.dropna())), case_id.notna(), frame.index
        )


def _derive_capacity_offers(frame: pd.DataFrame) -> None:
    ags = frame["ags"].astype(object)
    land = ags.where(_matches(ags, AGS_PATTERN), None).map(lambda v: v[:2] if isinstance(v, str) else None)
    frame["_ags_land"] = land.astype(object)
    state_from_ags = land.map(lambda v: LAND_BY_AGS_PREFIX.get(v) if isinstance(v, str) else None)
    frame["_state_from_ags"] = state_from_ags.astype(object)
    state = frame["state"].astype(object)
    known = state.isin(set(LAND_BY_AGS_PREFIX.values())) & state_from_ags.notna()
    frame["_state_matches_ags"] = _tristate(state.eq(state_from_ags), known, frame.index)

    units = frame[[f"_{c}_int" for c in UNIT_COLUMNS]]
    units_known = (units >= 0).all(axis=1)
    frame["_units_total"] = units.sum(axis=1).where(units_known)
    for derived, col in (("_wheelchair_le_units", "units_wheelchair"), ("_pets_le_units", "units_pets_allowed")):
        n = frame[f"_{col}_int"]
        frame[derived] = _tristate(n <= frame["_units_total"], units_known & (n >= 0), frame.index)

    start = frame["valid_from"].map(_parse_date)
    end = frame["valid_until"].map(_parse_date)
    both = start.notna() & end.notna()
    frame["_valid_from_le_until"] = _tristate(
        [bool(b) and s <= e for s, e, b in zip(start, end, both, strict=True)], both, frame.index
    )


def _derive_decisions(frame: pd.DataFrame, today: date) -> None:
    stamp = frame["decided_at"]
    parsed = stamp.map(_parse_timestamp)
    frame["_decided_at_is_timestamp"] = _tristate(parsed.notna(), _matches(stamp, _TIMESTAMP_RE), frame.index)
    frame["_decided_at_not_in_future"] = _tristate(
        parsed.map(lambda d: d is not None and d <= today), parsed.notna(), frame.index
    )
    keys = frame[["case_id", "round_id"]].astype(object)
    known = keys.notna().all(axis=1)
    first = ~keys.duplicated(keep="first")
    frame["_first_decision_for_case_round"] = _tristate(first, known, frame.index)


def prepare_frame(
    table: str,
    df: pd.DataFrame,
    *,
    related: Mapping[str, pd.DataFrame] | None = None,
    today: date,
    now: datetime | None = None,
    expectations_dir: Path = DEFAULT_EXPECTATIONS_DIR,
) -> tuple[pd.DataFrame, list[str]]:
    """A copy of `df` as the suite sees it: blanks as empty, missing contract columns added, derived columns added;
    date rules are judged on `today`."""
    suite_dict = load_suite_dict(table, expectations_dir)
    related = related or {}
    frame = df.copy()
    suite_cols = _suite_columns(suite_dict)
    missing = [c for c in suite_cols if not c.startswith("_") and c not in frame]
    for col in suite_cols:
        if not col.startswith("_"):
            frame[col] = _normalise(frame[col]) if col in df else pd.Series(None, index=frame.index, dtype=object)
    frame = frame.assign(**_derive_generic(frame, suite_cols), **_judge_aside(frame, suite_dict),
                         **_fits_storage(frame, suite_dict))
    if table == "households":
        _derive_households(frame, related.get("members"), today,
                           now or datetime.combine(today, datetime.max.time(), tzinfo=UTC))
    elif table == "members":
        _derive_members(frame, related.get("households"))
    elif table == "capacity_offers":
        _derive_capacity_offers(frame)
    elif table == "decisions":
        _derive_decisions(frame, today)
    return frame, missing


# --- running a suite ---------------------------------------------------------------------------------------------


def _raised(exception_info: Any) -> str | None:
    """The first exception message GX caught while evaluating an expectation, if any."""
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    for value in exception_info.values():
        if isinstance(value, dict) and (msg := _raised(value)):
            return msg
    return None


def _label(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _row_errors(results: Iterable[Any], index: pd.Index, label_of: Mapping[Any, Any]) -> list[RowError]:
    """The failing rows of each rule, by the caller's index labels (`label_of` maps the labels GX was given)."""
    errors: list[RowError] = []
    for res in results:
        cfg = res.expectation_config
        if msg := _raised(res.exception_info):
            raise RuntimeError(f"GX could not evaluate {cfg.type} on {cfg.kwargs}: {msg}")
        if res.success:
            continue
        meta = cfg.meta or {}
        kwargs = cfg.kwargs
        fld = meta.get("field") or kwargs.get("column") or ",".join(kwargs.get("column_list", [])) or "*"
        rule = meta.get("rule") or cfg.type
        message = meta.get("message") or f"{fld}: {cfg.type} failed"
        rows = (res.result or {}).get("unexpected_index_list")
        # A table-level rule has no rows to name: then no row of the table may pass.
        labels = index if rows is None else [label_of.get(_label(i), _label(i)) for i in rows]
        errors.extend(RowError(_label(i), fld, rule, message) for i in labels)
    return errors


def _sender_rows(frame: pd.DataFrame) -> pd.Index | None:
    """The rows as the sender numbers them (`source_row`: the spreadsheet row or CSV line the quarantine records),
    when every row has its own; GX is given these labels, so Data Docs name the rows the quarantine names."""
    if "source_row" not in frame:
        return None
    rows = frame["source_row"]
    if rows.isna().any() or not rows.is_unique:
        return None
    return pd.Index([_label(v) for v in rows])


def _in_row_order(errors: list[RowError], index: pd.Index) -> list[RowError]:
    # Row order first, then the order the errors were found in, so a row's problems are listed together.
    positions = {label: pos for pos, label in enumerate(index)}
    return sorted(errors, key=lambda e: positions.get(e.row_index, len(positions)))


def _docs_page(context: Any, key: Any, data_docs: Path) -> Path | None:
    try:
        urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME)
    except Exception:  # the page link is a convenience; the validation itself has succeeded
        log.warning("could not resolve the Data Docs page of %s", key, exc_info=True)
        urls = []
    for entry in urls:
        url = entry.get("site_url") or ""
        if url.startswith("file://"):
            page = Path(unquote(urlparse(url).path))
            if page.exists():
                return page
    index = data_docs / "index.html"
    return index if index.exists() else None


# Where a validation result carries values of the file (Data Docs show them as they are, without escaping).
_VALUE_KEYS = ("partial_unexpected_list", "unexpected_list", "partial_unexpected_counts", "observed_value",
               "details")


def _readable(value: Any, failing: str) -> Any:
    """A value of a result as its reader takes it: a derived yes/no column's "False" as the rule's plain word (the
    `failing_value` of its suite entry), a whole number without ".0" (pandas holds numbers beside blanks as floats)."""
    if isinstance(value, (bool, np.bool_)):
        return failing
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _readable(v, failing) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_readable(v, failing) for v in value]
    return value


def _safe(value: Any) -> Any:
    """A value of the file as text that cannot become markup in the Data Docs; numbers and None stay as they are."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value


def _render_docs(context: Any, key: Any, site: Path) -> None:
    """Make the stored result's values readable and safe as markup, then render its Data Docs page (the index is
    ours: `datadocs.write_index`).

    GX writes the unexpected values of a rule into its pages verbatim: a `<script>` in a cell of a sender's file
    would run in an auditor's browser. The row errors come from the result in memory, which stays as it was.
    """
    store = context.validation_results_store
    stored = store.get(key)
    for res in stored.results:
        if res.result:
            failing = (res.expectation_config.meta or {}).get("failing_value") or "fails the rule"
            res.result = {k: _safe(_readable(v, failing)) if k in _VALUE_KEYS else v for k, v in res.result.items()}
    store.set(key, stored)
    with exclusive(site):  # GX copies its static files into the site at each build; another run removes them
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[key], build_index=False)


def _publish(page: Path | None, data_docs: Path, run: datadocs.RunSummary, source_html: str | None) -> Path:
    if page is None or page.parent == data_docs:  # no page of its own was found: the index names the runs
        datadocs.write_index(data_docs)
        return data_docs / "index.html"
    datadocs.publish(data_docs, page, run, source_html=source_html)
    return page


def _run_name(batch_id: str) -> str:
    # The run name becomes a folder of the Data Docs site.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", batch_id).strip("._") or "batch"


def validate_table(
    table: str,
    df: pd.DataFrame,
    *,
    batch_id: str,
    settings: Settings,
    related: dict[str, pd.DataFrame] | None = None,
    source: SourceFile | None = None,
) -> TableValidation:
    """Validate one canonical table against `expectations/<table>.json` and render the run as Data Docs.

    `related` gives the other side of the members-households link (`{"members": ...}` for households,
    `{"households": ...}` for members); without it the cross-table rules are skipped, not failed. Date rules are
    judged on the day of `settings.clock`. `source` names the file on the page (else the batch id stands for it).
    """
    tv, docs = _run_table(table, df, batch_id=batch_id, settings=settings, related=related, source=source)
    tv.report_path, tv.docs = docs.publish(), docs
    return tv


@dataclass
class _Docs:
    """A run's Data Docs page as GX rendered it, published (made static, named, indexed) once its findings are in."""

    page: Path | None
    site: Path
    run: datadocs.RunSummary
    sender_rows: pd.Index | None  # the rows as the sender numbers them, by position in the table
    source_html: str | None = None  # GX's page as rendered, kept once published: a later publish starts from it

    def row_numbers(self, index: pd.Index, labels: Iterable[Any]) -> list[int]:
        """The given rows as the page names them: the sender's numbers, else positions in the table."""
        positions = sorted({int(index.get_loc(label)) for label in labels if label in index})
        return [int(self.sender_rows[p]) if self.sender_rows is not None else p for p in positions]

    def publish(self, outside: tuple[datadocs.OutsideFinding, ...] = ()) -> Path:
        held = any(f.rows for f in outside)
        self.run = replace(self.run, outside=outside, success=bool(self.run.success) and not held)
        if self.source_html is None and self.page is not None and self.page.parent != self.site:
            self.source_html = self.page.read_text(encoding="utf-8")
        return _publish(self.page, self.site, self.run, self.source_html)


def _column_labels(suite_dict: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Each derived column a rule is judged on (`_fits_ags`), named by the sender's column and the rule, as the
    quarantine names them: "ags (rule ags_fits_storage)"."""
    labels: dict[str, str] = {}
    for exp in suite_dict["expectations"]:
        column, meta = exp.get("kwargs", {}).get("column"), exp.get("meta") or {}
        if isinstance(column, str) and column.startswith("_") and meta.get("rule"):
            field = meta.get("field")
            labels.setdefault(column, f"{field} (rule {meta['rule']})" if field else f"rule {meta['rule']}")
    return tuple(sorted(labels.items()))


def _run_table(table: str, df: pd.DataFrame, *, batch_id: str, settings: Settings,
               related: dict[str, pd.DataFrame] | None, source: SourceFile | None) -> tuple[TableValidation, _Docs]:
    if not df.index.is_unique:
        raise ValueError(f"{table}: the DataFrame index must be unique, row errors are reported by index label")
    started = time.perf_counter()
    today = settings.clock.today()
    now = settings.clock.now()
    suite_dict = load_suite_dict(table, settings.expectations_dir)
    frame, missing = prepare_frame(table, df, related=related, today=today, now=now,
                                   expectations_dir=settings.expectations_dir)
    index = frame.index
    sender_rows = _sender_rows(frame)
    label_of: dict[Any, Any] = {}
    if sender_rows is not None:
        label_of = dict(zip(sender_rows, (_label(i) for i in index), strict=True))
        frame.index = sender_rows

    data_docs = settings.data_docs.resolve()
    data_docs.mkdir(parents=True, exist_ok=True)
    project = _project(settings.gx_root.resolve(), data_docs)
    run_time = settings.clock.now()
    run_id = RunIdentifier(run_name=_run_name(batch_id), run_time=run_time)

    def run(checkpoint: Checkpoint) -> Any:
        return checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={"current_year": today.year},
            run_id=run_id,
        )

    try:
        checkpoint_result = run(_checkpoint(project, table, suite_dict))
    except (ResourceFreshnessError, ResourceFreshnessAggregateError):
        # Another process re-synced the stored suite or checkpoint since this process cached it.
        checkpoint_result = run(_checkpoint(project, table, suite_dict, refresh=True))
    (key, suite_result), = checkpoint_result.run_results.items()
    _render_docs(project.context, key, data_docs)
    statistics = dict(suite_result.statistics)
    sheets = frame["source_sheet"].dropna().astype(str).unique() if "source_sheet" in frame else []
    docs = _Docs(_docs_page(project.context, key, data_docs), data_docs, datadocs.RunSummary(
        table=table, batch_id=batch_id, batch_time=run_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        file_name=source.name if source else None, sha256_prefix=source.sha256[:12] if source else batch_id,
        sheets=tuple(sheets), rows=len(frame), rules=int(statistics.get("evaluated_expectations") or 0),
        rules_held=int(statistics.get("successful_expectations") or 0), success=bool(suite_result.success),
        sender_rows=sender_rows is not None, column_labels=_column_labels(suite_dict)), sender_rows)

    frame.index = index
    row_errors = _in_row_order(_row_errors(suite_result.results, index, label_of), index)
    invalid = {e.row_index for e in row_errors}
    statistics.update(
        evaluated_rows=len(frame),
        invalid_rows=len(invalid),
        valid_rows=len(frame) - len(invalid),
        row_errors=len(row_errors),
        missing_columns=missing,
        seconds=round(time.perf_counter() - started, 3),
    )
    result = suite_result.to_json_dict()
    result.setdefault("meta", {})["rematch_batch_id"] = batch_id
    return TableValidation(
        table=table,
        success=bool(suite_result.success) and not invalid,
        evaluated_rows=len(frame),
        invalid_rows=invalid,
        row_errors=row_errors,
        statistics=statistics,
        report_path=None,
        result=result,
    ), docs


def _invalid_cases(df: pd.DataFrame, rows: set[int]) -> set[str]:
    if not rows or "case_id" not in df:
        return set()
    cases = _normalise(df["case_id"])
    return {c for c in cases[cases.index.isin(list(rows))] if isinstance(c, str)}


# The suite's findings a reader's finding explains better, on the same row: a person whose household row has no
# case_id is not also told that the export lost the link. Every other finding stays.
_EXPLAINED_BY = {"household_without_case_id": frozenset({"member_case_id_required", "member_has_household"})}


def _explained(tv: TableValidation, errors: list[RowError]) -> None:
    why = {(e.row_index, rule) for e in errors for rule in _EXPLAINED_BY.get(e.rule, ())}
    tv.row_errors[:] = [e for e in tv.row_errors if (e.row_index, e.rule) not in why]


def _add_errors(tv: TableValidation, errors: list[RowError], index: pd.Index) -> None:
    tv.row_errors[:] = _in_row_order(tv.row_errors + errors, index)
    tv.invalid_rows.update(e.row_index for e in errors)
    tv.success = tv.success and not errors
    tv.statistics.update(
        invalid_rows=len(tv.invalid_rows),
        valid_rows=tv.evaluated_rows - len(tv.invalid_rows),
        row_errors=len(tv.row_errors),
    )


def validate_batch(
    tables: dict[str, pd.DataFrame],
    *,
    batch_id: str,
    settings: Settings,
    structure: Mapping[str, list[RowError]] | None = None,
    source: SourceFile | None = None,
) -> dict[str, TableValidation]:
    """Validate every given table; a household and its members pass or fail together. `structure` holds rows the
    reader found ambiguous (a repeated column, a shared submission key), reported with the rules' findings;
    `source` names the file on the Data Docs pages, which list the rules judged outside the suites too."""
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"no expectation suite for table(s) {', '.join(unknown)}; expected {', '.join(TABLES)}")
    others = {"households": "members", "members": "households"}
    out: dict[str, TableValidation] = {}
    docs: dict[str, _Docs] = {}
    outside: dict[str, list[RowError]] = {}

    def add_outside(table: str, errors: list[RowError]) -> None:
        _add_errors(out[table], errors, tables[table].index)
        outside.setdefault(table, []).extend(errors)

    for table in TABLES:
        if table not in tables:
            continue
        other = others.get(table)
        related = {other: tables[other]} if other in tables else None
        out[table], docs[table] = _run_table(table, tables[table], batch_id=batch_id, settings=settings,
                                             related=related, source=source)
        if structure and structure.get(table):
            _explained(out[table], structure[table])
            add_outside(table, structure[table])

    if "households" in out and "members" in out:
        households, members = tables["households"], tables["members"]
        bad_households = _invalid_cases(households, out["households"].invalid_rows)
        bad_members = _invalid_cases(members, out["members"].invalid_rows)
        h_cases = _case_ids(households)
        m_cases = _case_ids(members)
        if h_cases is not None:
            add_outside("households", [
                RowError(_label(i), "members", "household_has_invalid_members",
                         "household has invalid members; fix the member rows listed for this case_id.")
                for i, c in h_cases.items() if c in bad_members
            ])
        if m_cases is not None:
            own_invalid = set(out["members"].invalid_rows)
            # Members of a household that is invalid (by its own row or by another member) are held back with it.
            add_outside("members", [
                RowError(_label(i), "case_id", "member_of_invalid_household",
                         f"this person's household {c} is invalid (see its household row and its other members); "
                         "the whole household waits until it is fixed.")
                for i, c in m_cases.items()
                if c in bad_households or (c in bad_members and _label(i) not in own_invalid)
            ])
    # The rules a household and its members are judged by together: listed on both pages even when they held nothing.
    checked = ({"households": ("household_has_invalid_members",), "members": ("member_of_invalid_household",)}
               if "households" in out and "members" in out else {})
    for table, tv in out.items():
        tv.report_path = docs[table].publish(_outside_findings(
            outside.get(table, []), tables[table].index, docs[table], checked.get(table, ())))
        tv.docs = docs[table]
    return out


def report_refused_while_storing(tv: TableValidation, index: pd.Index, errors: list[RowError]) -> None:
    """Rows that passed every rule but that storing refused (a submission older than the one stored, an id of
    another municipality, ...): listed on the batch's Data Docs page with the other rules judged outside the suite,
    by rule and row number; their values stay in the quarantine. The page is published again from GX's page."""
    if not errors or tv.docs is None:
        return
    found = _outside_findings(errors, index, tv.docs, ())
    tv.report_path = tv.docs.publish(tv.docs.run.outside + found)


# Rules judged outside the expectation suites: a household and its members pass or wait together (here), and the
# structure of the file as read (`ingest.readers`). Data Docs list them with the rows they held back.
OUTSIDE_SUITE_RULES = {
    "household_has_invalid_members": "every member of the household passes the members' rules",
    "member_of_invalid_household": "the person's household and its other members pass their rules (a household "
                                   "is stored whole or waits whole)",
    "repeated_column_disagrees": "a column named twice in the header holds the same value both times",
    "submission_key_not_unique": "each household row has its own submission key (Kobo _uuid, ODK KEY)",
    "household_link_ambiguous": "each person's row links to exactly one household row",
    "household_without_case_id": "each person's household row has a case_id",
    # Judged while storing (`ingest.service`): the row passed every rule, the database says it cannot be applied.
    "older_submission_than_stored": "a household's submission is not older than the one already stored for its "
                                    "case_id (an older one is not applied)",
    "offer_id_of_another_municipality": "an offer_id stays with the municipality (AGS) that first submitted it",
    "case_id_looks_like_another": "a case_id is not drawn exactly like another one stored or in this file",
    "offer_id_looks_like_another": "an offer_id is not drawn exactly like another one stored or in this file",
    "household_unknown_without_members": "a household not stored yet comes with its members (a KoboToolbox CSV "
                                         "export has none)",
    "member_of_unapplied_household": "the person's household row was applied (a person waits with its household)",
    "decision_already_recorded": "only the first decision for a case_id and round_id counts",
    "decision_without_offer": "a decision answers a match offered to that case_id in that round_id",
    "decision_before_offer": "a decision is not dated before its offer was made",
    "decision_for_withdrawn_offer": "a decision answers an offer that was not withdrawn",
    "decision_after_deadline": "a decision comes by its offer's response deadline",
}


def _outside_findings(errors: list[RowError], index: pd.Index, docs: _Docs,
                      checked: Iterable[str]) -> tuple[datadocs.OutsideFinding, ...]:
    """Per rule judged outside the suite (those `checked`, and any that held a row): what it requires, the fields it
    names, and the rows it held back (their numbers only)."""
    fields: dict[str, set[str]] = {rule: set() for rule in checked}
    labels: dict[str, set[Any]] = {rule: set() for rule in checked}
    for e in errors:
        fields.setdefault(e.rule, set()).add(e.field)
        labels.setdefault(e.rule, set()).add(e.row_index)
    return tuple(datadocs.OutsideFinding(rule=rule, description=OUTSIDE_SUITE_RULES.get(rule, rule),
                                         fields=tuple(sorted(fields[rule])),
                                         rows=tuple(docs.row_numbers(index, labels[rule]))) for rule in labels)
