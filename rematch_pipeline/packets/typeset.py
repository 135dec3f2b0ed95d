"""Print a packet or letter to a tagged, deterministic PDF with Typst, from the document tree of its HTML."""

from __future__ import annotations

import json
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from html import unescape
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).with_name("templates") / "document.typ"
# PDF/UA-1: tagged structure, document title and language are required, and Typst checks them while it exports.
PDF_STANDARDS = ["ua-1"]

# The HTML is the one home of what a document says: its text (translated sentences included) and what the Python
# view let through. This module only reads its structure back into plain values; Typst gets them as JSON strings,
# so no value is ever parsed as markup.
_BLOCKS = {"p", "h1", "h2", "h3", "dl", "table", "ol", "ul", "section", "div", "header", "footer", "main"}
_SKIP = {"style", "script", "colgroup"}
_RAW = {tag: re.compile(f"</{tag}", re.I) for tag in ("style", "script")}  # their text is not markup
_VOID = {"meta", "link", "col", "br", "img", "head", "body", "html"}
_SPACE_RE = re.compile(r"[ \t\r\n\f]+")
# What the pinned Typst's built-in fonts draw (Latin, Greek, Cyrillic, the punctuation, currency signs and arrows),
# probed by PDF/UA export (tests/test_typeset.py). A character outside (an emoji, Chinese, a control character in free
# text) would stop the whole document, as PDF/UA refuses text it cannot show: the PDF shows U+FFFD there, the HTML the
# character.
PRINTABLE = ("\t\n\r\u0020-\u007e\u00a0-\u02ff\u0370-\u0377\u037a-\u037f\u0384-\u038a\u038c\u038e-\u03a1"
             "\u03a3-\u04ff\u2000-\u200a\u2010-\u2027\u202f\u2030-\u2040\u2060\u20a0-\u20c0\u2100-\u211e\u2120\u2122\u2124"
             "\u2126-\u214f\u2190-\u21ff\ufffd")
_UNPRINTABLE_RE = re.compile(f"[^{PRINTABLE}]")


# Our templates write well-formed HTML (Jinja2 autoescapes every value), so a regular expression reads it with a third
# less CPU than html.parser (reading took an eighth of a letter's printing and a quarter of a packet's). Tokens and
# callbacks are html.parser's, so both give the same tree (tests/test_typeset.py compares them on generated rounds).
_TOKEN_RE = re.compile(r"<(?:!--.*?--|![^>]*|\?[^>]*|(/?)([A-Za-z][A-Za-z0-9]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*))>",
                       re.S)
_ATTR_RE = re.compile(r"""([^\s=/>][^\s=>]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")


class _TreeBuilder:
    """HTML of our own templates to nested blocks of inline runs; every element the templates use is known."""

    def __init__(self) -> None:
        self.lang = ""
        self.title = ""
        self.root: dict[str, Any] = {"t": "group", "cls": [], "children": []}
        self.stack: list[dict[str, Any]] = [self.root]
        self.inline: list[dict[str, Any]] = []  # open inline elements: their style applies to the text inside
        self.runs: list[dict[str, Any]] | None = None  # where text goes: the open leaf block or cell
        self.skip = 0
        self.in_title = False
        self.part = "body"  # the open table's part: head, body or foot

    # ---- helpers

    def _top(self) -> dict[str, Any]:
        return self.stack[-1]

    def _push(self, node: dict[str, Any]) -> None:
        top = self._top()
        if top["t"] in ("group", "section", "columns"):
            top["children"].append(node)
        self.stack.append(node)

    def _style(self) -> dict[str, Any]:
        style: dict[str, Any] = {}
        for el in self.inline:
            style.update(el)
        return style

    def feed(self, html: str) -> None:
        pos = 0
        for m in _TOKEN_RE.finditer(html):
            start = m.start()
            if start < pos:  # inside a style or script element
                continue
            if start > pos:
                self._text(html[pos:start])
            pos = m.end()
            tag = m.group(2)
            if tag is None:  # a comment, a declaration or a processing instruction: nothing to print
                continue
            tag = tag.lower()
            if m.group(1):
                self.handle_endtag(tag)
                continue
            body = m.group(3)
            attrs: list[tuple[str, str | None]] = [
                (k.lower(), unescape(q or a or b)) for k, q, a, b in _ATTR_RE.findall(body.rstrip("/ \t\n"))
            ] if body else []
            self.handle_starttag(tag, attrs)
            if body.endswith("/"):
                self.handle_endtag(tag)
            elif tag in _RAW:  # its text is not markup: on at its end tag (found without lowering the document,
                end = _RAW[tag].search(html, pos)  # as one İ lowers to two characters)
                pos = len(html) if end is None else end.start()
        if pos < len(html):
            self._text(html[pos:])

    def _text(self, data: str) -> None:
        self.handle_data(unescape(data) if "&" in data else data)

    # ---- parser callbacks

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        cls = a.get("class", "").split()
        if self.skip or tag in _SKIP:
            self.skip += tag in _SKIP
            return
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag in _VOID:
            return
        elif tag == "title":
            self.in_title = True
        elif tag in ("section", "header", "footer", "main", "div"):
            if "notes" in cls:  # free text from the interview: shown as it was written, line breaks kept
                node: dict[str, Any] = {"t": "p", "cls": cls, "runs": [], "pre": True}
                self._push(node)
                self.runs = node["runs"]
            else:
                self._push({"t": "columns" if "columns" in cls else "section", "tag": tag, "cls": cls,
                            "children": []})
        elif tag in ("p", "h1", "h2", "h3"):
            node = {"t": tag, "cls": cls, "runs": []}
            self._push(node)
            self.runs = node["runs"]
        elif tag == "dl":
            self._push({"t": "dl", "cls": cls, "items": []})
        elif tag in ("dt", "dd"):
            dl = self._top()
            if tag == "dt":
                dl["items"].append([[], []])
            self.runs = dl["items"][-1][0 if tag == "dt" else 1]
        elif tag == "table":
            self._push({"t": "table", "cls": cls, "caption": [], "head": [], "body": [], "foot": []})
            self.part = "body"
        elif tag in ("thead", "tbody", "tfoot"):
            self.part = {"thead": "head", "tbody": "body", "tfoot": "foot"}[tag]
        elif tag == "caption":
            self.runs = self._top()["caption"]
        elif tag == "tr":
            self._top()[self.part].append([])
        elif tag in ("th", "td"):
            cell: dict[str, Any] = {"th": tag == "th", "num": "num" in cls, "runs": []}
            self._top()[self.part][-1].append(cell)
            self.runs = cell["runs"]
        elif tag in ("ol", "ul"):
            self._push({"t": "list", "ordered": tag == "ol", "cls": cls, "items": []})
        elif tag == "li":
            item: list[dict[str, Any]] = []
            self._top()["items"].append(item)
            self.runs = item
        else:  # inline: span, strong, time, a
            style: dict[str, Any] = {}
            if tag == "strong":
                style["b"] = True
            if "ref" in cls:
                style["ref"] = True  # names and references: never hyphenated
            if a.get("lang"):
                style["lang"] = a["lang"]
            self.inline.append(style)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip -= tag in _SKIP
            return
        if tag == "title":
            self.in_title = False
        elif tag in _BLOCKS:
            if self.stack[-1] is not self.root:
                self.stack.pop()
            self.runs = None
        elif tag in ("dt", "dd", "th", "td", "caption", "li"):
            self.runs = None
        elif tag in ("span", "strong", "time", "a") and self.inline:
            self.inline.pop()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        data = _UNPRINTABLE_RE.sub("\ufffd", data)
        if self.in_title:
            self.title += data
            return
        if self.runs is None:
            if data.strip():
                raise ValueError("text outside of a block the PDF knows")
            return
        pre = self._top().get("pre", False) and self._top()["runs"] is self.runs
        text = data if pre else _SPACE_RE.sub(" ", data)
        if text:
            self.runs.append({"s": text, **self._style()})


def _trim(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whitespace at the edges of a block collapses away, as in the browser."""
    out = [dict(r) for r in runs]
    while out and not out[0]["s"].strip():
        out.pop(0)
    while out and not out[-1]["s"].strip():
        out.pop()
    if out:
        out[0]["s"] = out[0]["s"].lstrip()
        out[-1]["s"] = out[-1]["s"].rstrip()
    return out


def _tidy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _tidy(v) for k, v in node.items()}
    if isinstance(node, list):
        if node and all(isinstance(r, dict) and "s" in r for r in node):
            return _trim(node)
        return [_tidy(n) for n in node]
    return node


def document_tree(html: str) -> dict[str, Any]:
    """The document's language, title and blocks, read from the HTML our templates wrote."""
    builder = _TreeBuilder()
    builder.feed(html)
    title = _SPACE_RE.sub(" ", builder.title).strip()
    if not title or not builder.lang:
        raise ValueError("a document needs a title and a language")
    lang, _, region = builder.lang.partition("-")
    return {"lang": lang.lower(), "region": region.upper() or None, "title": title,
            "blocks": _tidy(builder.root["children"])}


_WORKER_MODULES = ("rematch_pipeline.packets.letters", "rematch_pipeline.packets.render", __name__)


def render_pool(workers: int) -> ProcessPoolExecutor:
    """Processes to render documents in. Typst's compiler threads do not survive a fork (a forked child that compiles
    hangs once its parent has compiled), so the workers come from a fresh forkserver, never from this process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_WORKER_MODULES))  # imported once in the server, not in every worker
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


@lru_cache(maxsize=1)
def _compiler() -> Any:
    import typst

    # Only the fonts built into the pinned Typst (Libertinus Serif: Latin and Cyrillic): the same bytes on any
    # machine, whatever fonts it has installed.
    return typst.Compiler(str(TEMPLATE_PATH), root=str(TEMPLATE_PATH.parent), font_paths=[], ignore_system_fonts=True)


def typeset_pdf(html: str) -> bytes:
    """The document's PDF: tagged (PDF/UA-1), title and language set, fonts embedded; same HTML, same bytes."""
    data = json.dumps(document_tree(html), ensure_ascii=False, sort_keys=True)
    pdf = _compiler().compile(sys_inputs={"document": data}, pdf_standards=PDF_STANDARDS, format="pdf")
    if not isinstance(pdf, bytes):  # one document, one PDF: never a list of pages
        raise TypeError("Typst returned no single PDF")
    return pdf
