"""Data Docs read offline and call nobody; each page names its file, table and batch time and the sender's rows."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from rematch_pipeline import contract
from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.datadocs import SourceFile, adopt_earlier_pages, offline_page
from rematch_pipeline.db.engine import migrate
from rematch_pipeline.ingest.service import IngestReport, ingest_file
from rematch_pipeline.quarantine import list_quarantine
from rematch_pipeline.validation import (
    OUTSIDE_SUITE_RULES,
    TABLES,
    load_suite_dict,
    rule_description,
    validate_batch,
)
from tests import exports as x
from tests.conftest import TEST_NOW

SECRETS = ("Tante Olena wohnt in Köln", "Przemyśl Hauptbahnhof Gleis 4", "+48 601 234 567", "Olena Stale-Kovalenko",
           "Ältere Fassung des Interviews")
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background"}


@dataclass
class Site:
    settings: Settings
    reports: dict[str, IngestReport]  # by the file's name


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A good and a bad household export and a capacity CSV with a bad row, through the real ingest path."""
    root = tmp_path_factory.mktemp("docs")
    url = f"sqlite:///{root / 'rematch.sqlite'}"
    settings = Settings(home=root / "home", database_url=url, clock=ManualClock(TEST_NOW), max_invalid_share=1.0)
    settings.ensure_dirs()
    migrate(url)
    withheld = x.household("RM-B", consent_matching="no", german_level="c2", notes=SECRETS[0],
                           interview_location=SECRETS[1], contact_phone=SECRETS[2])
    files = {
        "good.xlsx": x.kobo_xlsx([x.household("RM-A")], {"uuid-RM-A": x.family("head", "child")}),
        "bad.xlsx": x.kobo_xlsx([x.household("RM-C"), withheld, x.household("RM-D", pets="lizard"),
                                 x.household("RM-E", interview_date="2026-02-30", weight_work="12")],
                                {"uuid-RM-C": x.family("head"), "uuid-RM-B": x.family("head"),
                                 "uuid-RM-D": [x.member("head"), x.member("child", sex="unknown")],
                                 "uuid-RM-E": x.family("head", "spouse")}),
        "offers.csv": x.capacity_csv([x.offer("OF-1"), x.offer("OF-2", places_persons="3")]),
        # RM-A again, valid, but submitted before the stored one: storing refuses it and its two members.
        "stale.xlsx": x.kobo_xlsx([x.household("RM-A", _submission_time="2026-11-01T09:00:00", contact_name=SECRETS[3],
                                               notes=SECRETS[4])], {"uuid-RM-A": x.family("head", "child")}),
    }
    reports = {}
    for name, data in files.items():
        path = root / name
        path.write_bytes(data)
        reports[name] = ingest_file(path, settings)
    return Site(settings, reports)


class _Page(HTMLParser):
    """What a browser would fetch or run for a page, and the rows its tables of failing values name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.scripts = 0
        self.styles: list[str] = []
        self.handlers: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value:
                self.urls.append((tag, value))
            if name.startswith("on"):
                self.handlers.append(name)
            if name == "style" and value:
                self.styles.append(value)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def pages(site: Site) -> list[Path]:
    found = sorted(site.settings.data_docs.rglob("*.html"))
    assert len(found) >= 6, found  # the index and a page per file and table
    return found


def test_no_page_fetches_or_runs_anything_from_outside_the_site(site: Site) -> None:
    docs = site.settings.data_docs.resolve()
    for path in pages(site):
        page = parse(path)
        text = path.read_text(encoding="utf-8")
        assert page.scripts == 0 and not page.handlers, path  # static: readable without scripts
        for tag, url in page.urls:
            assert not re.match(r"\s*([a-z][a-z0-9+.-]*:|//)", url, re.I), (path, tag, url)
            target = url.split("#")[0]
            if target:  # every local resource and link is a file of the site
                resolved = (path.parent / target).resolve()
                assert resolved.is_file() and docs in resolved.parents, (path, url)
        for css in page.styles:
            assert not re.search(r"url\(|@import", css, re.I), (path, css)
        # GX's logo comes from its own server, with the data context id in the URL.
        assert "great-expectations-web-assets" not in text and "dataContextId" not in text, path
        assert any(tag == "link" and url.endswith(".css") for tag, url in page.urls), path


def test_no_file_of_the_site_names_an_outside_server(site: Site) -> None:
    """Not even a stylesheet no page links: the folder can be handed to an auditor as it is."""
    for path in site.settings.data_docs.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".css", ".js", ".json", ".svg"):
            assert not re.search(r"https?://", path.read_text(encoding="utf-8", errors="replace")), path


def test_gx_analytics_are_off_in_the_project(site: Site) -> None:
    config = (site.settings.gx_root / "great_expectations.yml").read_text(encoding="utf-8")
    assert re.search(r"^analytics_enabled: false$", config, re.M)


def test_the_index_lists_every_run_in_a_static_table(site: Site) -> None:
    index = site.settings.data_docs / "index.html"
    page = parse(index)
    assert page.scripts == 0
    (runs,) = [t for t in page.tables if t and t[0][:3] == ["Batch time (UTC)", "Table", "File"]]
    linked = {(index.parent / url).resolve() for tag, url in page.urls if tag == "a"}
    reported = {Path(p).resolve() for r in site.reports.values() for p in r.reports.values()}
    assert reported == linked and len(runs) - 1 == len(reported) == 7
    listed = {(row[1], row[3]) for row in runs[1:]}
    assert listed == {(table, r.sha256[:12]) for r in site.reports.values() for table in r.reports}
    assert all(row[0] == TEST_NOW.strftime("%Y-%m-%d %H:%M:%S") for row in runs[1:])


def _header(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    block = text[text.index('<header class="rematch-run">'):text.index("</header>")]
    return {k: html.unescape(" ".join(re.sub("<[^>]+>", "", v).split()))
            for k, v in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", block, re.S)}


def test_a_validation_page_names_its_sha256_table_and_batch_time(site: Site) -> None:
    for name, report in site.reports.items():
        for table, page in report.reports.items():
            header = _header(Path(page))
            assert header["sha256"] == report.sha256[:12], (name, header)
            assert header["Table"].split()[0] == table
            assert header["Batch time"] == f"{TEST_NOW:%Y-%m-%d %H:%M:%S} UTC"


def test_an_ingested_files_page_names_the_file_as_sent(site: Site) -> None:
    for name, report in site.reports.items():
        for page in report.reports.values():
            assert _header(Path(page))["File"] == name


def test_a_validation_page_names_the_file_it_was_given(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TEST_NOW))
    source = SourceFile("Angebote Köln <2026>.csv", "ab12" * 16)
    frame = pd.DataFrame([x.offer("OF-1") | {"source_row": 2}])
    (tv,) = validate_batch({"capacity_offers": frame}, batch_id="b", settings=settings, source=source).values()
    assert tv.report_path is not None
    header = _header(tv.report_path)
    assert (header["File"], header["sha256"]) == (source.name, source.sha256[:12])
    assert "Angebote Köln &lt;2026&gt;.csv" in tv.report_path.read_text(encoding="utf-8")  # named as text


def _page_rows(path: Path) -> set[int]:
    """The rows the suite's tables of failing values name (their column "Row in file")."""
    rows: set[int] = set()
    for table in parse(path).tables:
        if table and "Row in file" in table[0] and table[0] != OUTSIDE_HEADER:
            column = table[0].index("Row in file")
            for row in table[1:]:
                rows.update(int(n) for n in re.findall(r"\d+", row[column]))
    return rows


def test_failing_rows_on_a_page_are_the_rows_the_quarantine_records(site: Site) -> None:
    quarantined = list_quarantine(site.settings)
    for name in ("bad.xlsx", "offers.csv"):
        report = site.reports[name]
        for table, page in report.reports.items():
            suite_rules = {e["meta"]["rule"] for e in load_suite_dict(table)["expectations"]}
            expected = {int(q["source_row"]) for q in quarantined if q["sha256"] == report.sha256
                        and q["table_name"] == table and q["rule"] in suite_rules}
            assert expected and _page_rows(Path(page)) == expected, (name, table, expected)
    assert _page_rows(Path(site.reports["offers.csv"].reports["capacity_offers"])) == {3}  # CSV line 3: OF-2


def test_rule_descriptions_read_as_rules_not_as_failures() -> None:
    for table in TABLES:
        for exp in load_suite_dict(table)["expectations"]:
            text = rule_description(exp)
            assert text != exp["meta"]["message"], exp["meta"]["rule"]
            # A rule states what holds; a failure message tells the sender what went wrong and what to do.
            assert not re.search(r"\b(must|fill it|correct|remove|type it|check|send|failed|empty)\b|;", text), text
            # It names the sender's column (Kobo's own `_submission_time` too), never a helper column of ours.
            assert not re.search(r"_(one_script|visible_only|int)\b|\b_fits_", text), text
    rules = {e["meta"]["rule"]: e for e in load_suite_dict("capacity_offers")["expectations"]}
    assert rule_description(rules["places_persons_at_least_8"]) == \
        f"places_persons is at least {contract.MIN_PLACES_PERSONS}"
    assert rule_description(rules["state_allowed_value"]).startswith("state is one of: SH, HH, NI")
    with pytest.raises(ValueError, match="needs a description"):
        rule_description({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "ags", "regex": "x"},
                          "meta": {"rule": "ags_new"}})


def test_pages_show_the_rule_as_description(site: Site) -> None:
    text = Path(site.reports["offers.csv"].reports["capacity_offers"]).read_text(encoding="utf-8")
    assert "places_persons is at least 8" in text
    assert "places_persons must be at least" not in text


def test_free_text_of_a_household_without_consent_appears_in_no_page(site: Site) -> None:
    assert any(q["rule"] == "german_level_allowed_value" for q in list_quarantine(site.settings))  # RM-B failed
    for path in site.settings.data_docs.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for secret in SECRETS:
                assert secret not in text, (path, secret)


def test_offline_page_drops_what_would_load_or_run() -> None:
    page = ('<html><head><link rel="stylesheet" href="https://cdn.example/b.css"><script src="//cdn.example/j.js">'
            '</script><style>body{background:url(https://x.example/a.png)}</style></head><body>'
            '<img src="https://assets.example/logo.png?dataContextId=1"><img src="//assets.example/b.png" />'
            '<a href="https://gx.example">GX</a>'
            '<button onclick="go()">x</button><footer><a href="https://news.example">Subscribe</a></footer>'
            '<table><tr><th>Index</th></tr><tr><td>&lt;b&gt;3</td></tr></table></body></html>')
    out = offline_page(page, css_href="static/rematch/data_docs.css", header="<header>run</header>")
    assert not re.search(r"https?:|//cdn|<script|<style|onclick|Subscribe", out), out
    assert '<link rel="stylesheet" href="static/rematch/data_docs.css">' in out
    assert "<body><header>run</header>" in out and "<th>Row in file</th>" in out
    assert "<td>&lt;b&gt;3</td>" in out and "<a>GX</a>" in out


def test_pages_written_before_the_upgrade_are_made_static_and_listed(tmp_path: Path) -> None:
    # A site GX built before: its pages fetch styles, scripts and the logo from outside and name rows by position.
    folder = tmp_path / "validations" / "households" / "0123456789ab" / "20260301T101500.000001Z"
    folder.mkdir(parents=True)
    (folder / "rematch-households.html").write_text(
        '<!DOCTYPE html><html><head><script src="https://code.jquery.example/j.js"></script></head><body>'
        '<img src="https://assets.example/logo-long.png?dataContextId=7" />'
        '<table><tr><th>Index</th></tr><tr><td>0</td></tr></table></body></html>', encoding="utf-8")
    assert adopt_earlier_pages(tmp_path) == 1
    assert adopt_earlier_pages(tmp_path) == 0  # once
    page = (folder / "rematch-households.html").read_text(encoding="utf-8")
    assert "https:" not in page and "<script" not in page and "<th>Position</th>" in page
    assert _header(folder / "rematch-households.html")["Batch time"] == "2026-03-01 10:15:00 UTC"
    (runs,) = parse(tmp_path / "index.html").tables
    assert runs[1][:4] == ["2026-03-01 10:15:00", "households", "(not named)", "0123456789ab"]
    assert runs[1][4] == "not recorded"


def _value_cells(path: Path) -> list[tuple[str, str]]:
    """(failing value, rows) of every table of failing values on a page."""
    return [(row[0], row[2]) for table in parse(path).tables if table and table[0][:2] == ["Unexpected Value", "Count"]
            for row in table[1:]]


def _page_of(site: Site, name: str, table: str) -> Path:
    return Path(site.reports[name].reports[table])


def test_a_failing_yes_no_rule_shows_a_plain_word_never_a_boolean(site: Site) -> None:
    # Rules on a derived yes/no column (a real date, plain characters...) fail with False; the page says what it is.
    for table in TABLES:
        for exp in load_suite_dict(table)["expectations"]:
            if exp["kwargs"].get("value_set") == [True]:
                assert exp["meta"].get("failing_value"), exp["meta"]["rule"]
    cells = [cell for path in pages(site) for cell in _value_cells(path)]
    assert cells and not [c for c in cells if c[0] in ("True", "False")], cells
    row_e = 5  # RM-E: the header, then RM-C, RM-B, RM-D
    assert ("not a date", str(row_e)) in _value_cells(_page_of(site, "bad.xlsx", "households"))


def test_whole_numbers_show_as_the_sender_wrote_them(site: Site) -> None:
    cells = [cell for path in pages(site) for cell in _value_cells(path)]
    assert not [c for c in cells if re.fullmatch(r"-?\d+\.0", c[0])], cells
    assert ("3", "3") in _value_cells(_page_of(site, "offers.csv", "capacity_offers"))  # places_persons 3, line 3
    assert ("12", "5") in _value_cells(_page_of(site, "bad.xlsx", "households"))  # weight_work 12 of RM-E


OUTSIDE_HEADER = ["Rule", "What it requires", "Field", "Rows quarantined", "Row in file"]


def _outside_rules(path: Path) -> dict[str, list[str]]:
    """The section of rules judged outside the suite: rule -> its row (the rule, what it requires, ...)."""
    found = [t for t in parse(path).tables if t and t[0] == OUTSIDE_HEADER]
    return {row[0]: row for table in found for row in table[1:]}


def test_rules_judged_across_tables_are_listed_with_the_rows_they_quarantined(site: Site) -> None:
    quarantined = list_quarantine(site.settings)
    for name, report in site.reports.items():
        for table, page in report.reports.items():
            suite_rules = {e["meta"]["rule"] for e in load_suite_dict(table)["expectations"]}
            expected: dict[str, set[int]] = {}
            for q in quarantined:
                if q["sha256"] == report.sha256 and q["table_name"] == table and q["rule"] not in suite_rules:
                    expected.setdefault(q["rule"], set()).add(int(q["source_row"]))
            listed = _outside_rules(Path(page))
            shown = {rule: {int(n) for n in re.findall(r"\d+", row[4])}
                     for rule, row in listed.items() if row[3] != "0"}
            assert shown == expected, (name, table, listed)
            for row in listed.values():  # numbers only: no value of a row, no free text
                assert int(row[3]) == len(re.findall(r"\d+", row[4])) and re.fullmatch(r"none|\d+(, \d+)*", row[4])
    households = _outside_rules(_page_of(site, "bad.xlsx", "households"))
    assert households["household_has_invalid_members"][3:] == ["1", "4"]  # RM-D, whose child fails
    # Checked and found nothing: still listed, so an auditor sees the rule was applied.
    assert _outside_rules(_page_of(site, "good.xlsx", "members"))["member_of_invalid_household"][3:] == ["0", "none"]
    assert _header(_page_of(site, "bad.xlsx", "members"))  # the page still opens with its run header


def test_rows_refused_while_storing_are_on_their_batchs_page_with_their_plain_reason(site: Site) -> None:
    # Rule: validation.report_refused_while_storing: a stale submission passes every rule, the store refuses it; the
    # batch's page lists it like the other refused rows, by rule, reason and row number, never by its values.
    report = site.reports["stale.xlsx"]
    assert (report.accepted, report.quarantined) == (0, 3)
    households, members = (_page_of(site, "stale.xlsx", table) for table in ("households", "members"))
    assert _outside_rules(households)["older_submission_than_stored"][1:] == [
        OUTSIDE_SUITE_RULES["older_submission_than_stored"], "_submission_time", "1", "2"]
    assert _outside_rules(members)["member_of_unapplied_household"][3:] == ["2", "2, 3"]
    for page in (households, members):
        text = page.read_text(encoding="utf-8")
        assert text.count('<header class="rematch-run">') == 1 and text.count("Content-Security-Policy") == 1
        assert _header(page)["File"] == "stale.xlsx" and "Validation of" in text and ": failed" in text
        assert not any(secret in text for secret in SECRETS)


def _text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))


def test_a_page_names_derived_columns_by_the_senders_column_and_rule(site: Site) -> None:
    page = _page_of(site, "offers.csv", "capacity_offers")
    text = _text(page)
    # The contents and section headings name what the sender wrote and the rule the quarantine names, never the
    # helper column the validation derives for it.
    assert "places_persons (rule places_persons_fits_storage)" in text and "ags (rule ags_valid_land)" in text
    assert not re.search(r"(?<![\w])_(fits|ok)_\w+", text), re.findall(r"(?<![\w])_(?:fits|ok)_\w+", text)[:5]


def test_a_page_shows_no_internals_of_how_gx_held_the_data(site: Site) -> None:
    for page in (p for p in pages(site) if p.name != "index.html"):
        text = _text(page)
        assert "Data asset: None" not in text and "<DATAFRAME>" not in text and "Batch Parameters" not in text
        assert "Batch Spec" not in text
    assert "Table: capacity_offers" in _text(_page_of(site, "offers.csv", "capacity_offers"))


def test_every_rule_judged_while_storing_is_described_on_the_data_docs() -> None:
    """Rule: a row refused while storing shows on its batch's Data Docs page with what the rule requires, never with
    the bare rule name: each rule the store can give has its description."""
    from rematch_pipeline.ingest import service

    storing = {rule for _, rule, _ in service._APPLY_RULES.values()} | {service._MEMBER_REJECT[1]}
    assert len(storing) >= 10
    assert sorted(storing - set(OUTSIDE_SUITE_RULES)) == []
