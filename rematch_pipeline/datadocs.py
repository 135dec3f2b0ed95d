"""Data Docs that read offline and call nobody: GX's pages made static, each named by its file, and a static index."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from rematch_pipeline.locks import exclusive

STATIC_DIR = Path(__file__).resolve().parent / "datadocs_static"
STYLESHEET = PurePosixPath("static", "rematch", "data_docs.css")  # where the site keeps its copy of the stylesheet
_HEADER_MARK = '<header class="rematch-run">'  # what run_header.html.j2 opens with
RUN_RECORD = "rematch-run.json"  # beside each validation page: what the index lists about that run
INDEX_RUNS_LIMIT = 500  # the index lists the newest runs; older pages stay where they are
# The pages run no script and fetch nothing a script could ask for, even if a value slipped through as markup.
CSP = "script-src 'none'; connect-src 'none'; frame-src 'none'; object-src 'none'; form-action 'none'"


@dataclass(frozen=True)
class SourceFile:
    """The file a batch came from, as its sender named it."""

    name: str
    sha256: str


@dataclass(frozen=True)
class OutsideFinding:
    """A rule judged outside the expectation suite (across a household's rows, or on the file's structure) and the
    rows it held back, by number only."""

    rule: str
    description: str
    fields: tuple[str, ...]
    rows: tuple[int, ...]


@dataclass(frozen=True)
class RunSummary:
    """What a validation page says about its batch in its header, and what the index lists."""

    table: str
    batch_id: str
    batch_time: str  # UTC, "YYYY-MM-DD HH:MM:SS"
    file_name: str | None
    sha256_prefix: str
    sheets: tuple[str, ...]
    rows: int | None  # None: a page written before runs were recorded
    rules: int | None
    rules_held: int | None
    success: bool | None
    sender_rows: bool  # the page names rows as the sender numbers them
    page: str = ""  # relative to the site, set when published
    outside: tuple[OutsideFinding, ...] = ()  # rules judged outside the suite, when the run was part of a batch
    # The columns a rule is judged on that the validation derives (`_fits_ags`), by what the sender can read.
    column_labels: tuple[tuple[str, str], ...] = ()


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(STATIC_DIR)), autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _href(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _is_outside(url: str | None) -> bool:
    """A URL that leaves the site: one with a scheme (`https:`, `javascript:`, `file:`...) or a host (`//host`)."""
    return re.match(r"\s*(?:[a-z][a-z0-9+.-]*:|[/\\]{2})", url or "", re.IGNORECASE) is not None


# Elements whose only purpose is to load or run something; none of them is kept.
_DROPPED = frozenset({"script", "style", "noscript", "iframe", "object", "embed", "footer", "template"})
_URL_ATTRIBUTES = frozenset({"src", "href", "srcset", "action", "formaction", "poster", "data", "background"})


class _Offline(HTMLParser):
    """Streams a GX page through: no script, style sheet, outside resource, event handler or comment stays; the
    local stylesheet, a content security policy and the run header go in."""

    def __init__(self, head: str, header: str, folder: Path | None, row_label: str,
                 labels: Mapping[str, str]) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.row_label = row_label
        self.labels = labels
        self.head = head
        self.header = header
        self.folder = folder
        self.skipping: str | None = None
        self.depth = 0
        self.in_th = False

    def _dead(self, url: str | None) -> bool:
        """A link into the site to a page GX did not build (a suite page: only validation pages are built)."""
        target = (url or "").split("#")[0].split("?")[0]
        if self.folder is None or not target:
            return False
        return not (self.folder / target).exists()

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], close: str) -> str:
        kept = []
        for name, value in attrs:
            if name.startswith("on") or (name in _URL_ATTRIBUTES and (_is_outside(value) or self._dead(value))):
                continue
            if name == "style" and value and "url(" in value.lower():
                continue
            kept.append(f" {name}" if value is None else f' {name}="{html.escape(value, quote=True)}"')
        return f"<{tag}{''.join(kept)}{close}>"

    def _dropped(self, tag: str, values: dict[str, str | None]) -> bool:
        if tag == "link":  # GX's style sheets come from outside, its icon link misses the site's folder
            return True
        if tag in ("img", "source", "video", "audio") and (_is_outside(values.get("src"))
                                                            or _is_outside(values.get("srcset"))):
            if tag == "img":  # GX's logo, fetched from its server with the data context id in the URL
                self.out.append('<span class="rematch-home">Data Docs</span>')
            return True
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            self.depth += tag == self.skipping
            return
        if tag in _DROPPED:
            self.skipping, self.depth = tag, 1
            return
        if self._dropped(tag, dict(attrs)):
            return
        self.out.append(self._tag(tag, attrs, ""))
        if tag == "head":
            self.out.append(self.head)
        elif tag == "body":
            self.out.append(self.header)
        self.in_th = tag == "th" or self.in_th

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping or tag in _DROPPED or self._dropped(tag, dict(attrs)):
            return
        self.out.append(self._tag(tag, attrs, " /"))

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping:
                self.depth -= 1
                if self.depth == 0:
                    self.skipping = None
            return
        if tag == "th":
            self.in_th = False
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.in_th and data.strip() == "Index":  # GX's name for the column of failing rows
            data = data.replace("Index", self.row_label)
        elif data.strip() in self.labels:  # a derived column in the contents and section headings
            data = data.replace(data.strip(), html.escape(self.labels[data.strip()]))
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        if not self.skipping:
            self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if not self.skipping:
            self.out.append(f"&#{name};")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")


# GX's blocks about how it held the data in memory: nothing an auditor can use ("dataframe: <DATAFRAME>").
_GX_INTERNALS = re.compile(r'<div id="([\w-]+)-header">\s*<div>\s*<h6[^>]*>\s*(?:Batch Parameters|Batch Spec)\s*'
                           r'</h6>\s*</div>\s*</div>')


def _without_gx_internals(page_html: str, table: str | None) -> str:
    for block in reversed(list(_GX_INTERNALS.finditer(page_html))):
        body = re.compile(rf'\s*<table id="{re.escape(block.group(1))}-body".*?</table>', re.S)
        found = body.match(page_html, block.end())
        page_html = page_html[:block.start()] + page_html[found.end() if found else block.end():]
    # GX names no data asset for a batch of an in-memory frame: the table is what was validated.
    return page_html.replace("Data asset: None", f"Table: {html.escape(table)}" if table else "")


def offline_page(page_html: str, *, css_href: str, header: str = "", folder: Path | None = None,
                 row_label: str = "Row in file", column_labels: Mapping[str, str] | None = None,
                 table: str | None = None) -> str:
    """A GX page as a static page: readable without scripts, fetching nothing from outside the site; with the
    page's `folder`, links to pages that do not exist lose their target. `row_label` heads the column of failing
    rows (GX calls it "Index"); `column_labels` name the derived columns as the sender reads them."""
    head = (f'\n<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'\n<link rel="stylesheet" href="{html.escape(css_href, quote=True)}">')
    parser = _Offline(head, header, folder, row_label, column_labels or {})
    parser.feed(page_html)
    parser.close()
    # On the parser's output, whose tags are written one way whatever way GX wrote them.
    return _without_gx_internals("".join(parser.out), table)


def _write(path: Path, text: str) -> None:
    """Replace `path` at once: a browser or another run never reads half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _install_stylesheet(site: Path) -> Path:
    # GX copies its own styles, fonts and images into static/ at each build; no page of ours links them, and its
    # stylesheet fetches a logo from an outside server: they go.
    for child in (site / "static").glob("*"):
        if child.name != STYLESHEET.parts[1]:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    target = site / STYLESHEET
    css = (STATIC_DIR / "data_docs.css").read_text(encoding="utf-8")
    if not target.is_file() or target.read_text(encoding="utf-8") != css:
        _write(target, css)
    return target


def publish(site: Path, page: Path, run: RunSummary, *, index: bool = True, source_html: str | None = None) -> None:
    """Make the page of one run static and named by its file, keep its record, and write the index again;
    `source_html` is GX's page as it rendered it, when the page was published before (it is published again whole,
    from GX's page, with what is known now)."""
    with exclusive(site):
        css = _install_stylesheet(site)
        run = replace(run, page=page.relative_to(site).as_posix())
        header = _env().get_template("run_header.html.j2").render(run=run, index_href=_href(site / "index.html", page))
        gx_page = page.read_text(encoding="utf-8") if source_html is None else source_html
        _write(page, offline_page(gx_page, css_href=_href(css, page), header=header,
                                  folder=page.parent, row_label="Row in file" if run.sender_rows else "Position",
                                  column_labels=dict(run.column_labels), table=run.table))
        _write(page.parent / RUN_RECORD, json.dumps(asdict(run), ensure_ascii=False, indent=1))
        if index:
            write_index(site)


def adopt_earlier_pages(site: Path) -> int:
    """Make the validation pages GX wrote before this module existed static too, and list them in the index (by
    what their folder says: table, batch, time); returns how many there were."""
    with exclusive(site):
        adopted = 0
        for page in site.glob("validations/*/*/*/*.html"):
            if (page.parent / RUN_RECORD).exists() or _HEADER_MARK in page.read_text(encoding="utf-8"):
                continue  # made static already (by another run this moment, if its record is not there yet)
            suite, batch_id, stamp = page.parts[-4:-1]
            try:
                when = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").strftime("%Y-%m-%d %H:%M:%S")
            except ValueError:  # not a folder GX names by run time: not a validation page
                continue
            publish(site, page, RunSummary(table=suite, batch_id=batch_id, batch_time=when, file_name=None,
                                           sha256_prefix=batch_id, sheets=(), rows=None, rules=None, rules_held=None,
                                           success=None, sender_rows=False), index=False)
            adopted += 1
        if adopted:
            write_index(site)
        return adopted


def _records(site: Path) -> Iterable[dict[str, Any]]:
    for path in site.glob(f"validations/*/*/*/{RUN_RECORD}"):
        try:
            yield json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # written by another run this moment, or by hand: the next build lists it
            continue


def write_index(site: Path) -> Path:
    """The site's index as a static table of the runs, newest first (GX's own index is filled by a script)."""
    with exclusive(site):
        css = _install_stylesheet(site)
        # The page's folder is GX's run time to the microsecond: runs of one second keep their order.
        runs = sorted(_records(site), reverse=True,
                      key=lambda r: (r.get("batch_time", ""), PurePosixPath(r.get("page", "")).parent.name))
        index = site / "index.html"
        _write(index, _env().get_template("index.html.j2").render(
            runs=runs[:INDEX_RUNS_LIMIT], total=len(runs), left_out=len(runs) > INDEX_RUNS_LIMIT, csp=CSP,
            css_href=_href(css, index)))
        return index
