"""Typst PDFs of packets and letters: the same facts as the HTML, deterministic, tagged, fonts embedded."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import unicodedata
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from rematch_pipeline.config import pdf_renderer
from rematch_pipeline.packets import typeset
from rematch_pipeline.packets.bench import round_documents
from rematch_pipeline.packets.letters import LetterInput, available_languages, render_letter_html
from rematch_pipeline.packets.render import PacketInput, render_packet_html, render_packet_pdf
from rematch_pipeline.packets.typeset import document_tree, typeset_pdf
from tests.html_tree import parse
from tests.test_letters import make_letter
from tests.test_packets import ACCEPTED, PENDING, entry, make_household, make_packet

# Elements whose own text is one fact of the document: a label, a value, a cell, a sentence.
FACT_TAGS = {"h1", "h2", "dt", "dd", "th", "td", "caption", "li", "p"}


def _squeeze(text: str) -> str:
    """Text without what layout may add or drop: white space, line-break hyphens (hard or soft), word joiners."""
    return re.sub(r"[\s\u00ad\u2060-]+", "", text)


def facts(html: str) -> list[str]:
    doc = parse(html)
    return [f for n in doc.iter() if n.tag in FACT_TAGS and (f := n.flat_text())]


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture(scope="module")
def generated_round() -> tuple[list[PacketInput], list[LetterInput]]:
    packets, letters = round_documents(households=40, municipalities=4, seed=7, time_limit_s=10.0)
    # Every other household has accepted: their contact data and notes are facts of the packet too.
    packets = [replace(p, households=tuple(replace(ph, accepted=i % 2 == 0) for i, ph in enumerate(p.households)))
               for p in packets]
    return packets, letters


def test_generated_round_pdfs_carry_every_fact_of_their_html(
        generated_round: tuple[list[PacketInput], list[LetterInput]]) -> None:
    """Proof of equality: per document, each text the HTML shows is in the text pypdf extracts from its PDF."""
    packets, letters = generated_round
    htmls = [render_packet_html(p) for p in packets] + [render_letter_html(x) for x in letters]
    assert len(packets) >= 3 and len(letters) >= 20
    assert {x.language for x in letters} >= {"uk", "ru"}  # Cyrillic letters among them
    for html in htmls:
        pdf = typeset_pdf(html)
        title = parse(html).iter("title")[0].flat_text()
        text = _squeeze(pdf_text(pdf))
        missing = [f for f in facts(html) if _squeeze(f) not in text]
        assert missing == [], f"{title}: {missing[:5]}"
        meta = PdfReader(io.BytesIO(pdf)).metadata
        assert meta is not None and meta.title == title  # the title is the document's, not a page's text


def test_pdf_hides_what_the_html_hides(generated_round: tuple[list[PacketInput], list[LetterInput]]) -> None:
    """The rule of what a packet shows lives in Python: a pending household's phone is in neither document."""
    packets, _ = generated_round
    packet = next(p for p in packets if any(not ph.accepted and ph.household.contact_phone for ph in p.households))
    html = render_packet_html(packet)
    text = pdf_text(typeset_pdf(html))
    for ph in packet.households:
        phone = ph.household.contact_phone
        if phone:
            assert (phone in html) == ph.accepted == (phone in text)


def test_typst_markup_in_free_text_is_printed_as_text() -> None:
    notes = '#set page(width: 1cm) *fett* _kursiv_ $x^2$ #panic("x") ] [ <label> @ref // kein Kommentar'
    packet = make_packet(entry(make_household("RM-2026-00666", notes=notes), True))
    text = re.sub(r"\s+", " ", pdf_text(typeset_pdf(render_packet_html(packet))))
    assert notes in text


def test_same_html_gives_the_same_pdf_bytes_in_another_process(tmp_path: Path) -> None:
    html = render_letter_html(make_letter("uk"))
    pdf = typeset_pdf(html)
    assert typeset_pdf(html) == pdf
    source = tmp_path / "letter.html"
    source.write_text(html, encoding="utf-8")
    code = ("import sys; from pathlib import Path; from rematch_pipeline.packets.typeset import typeset_pdf; "
            "sys.stdout.buffer.write(typeset_pdf(Path(sys.argv[1]).read_text(encoding='utf-8')))")
    other = subprocess.run([sys.executable, "-c", code, str(source)], capture_output=True, check=True).stdout
    assert other == pdf
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf


@pytest.mark.parametrize("lang", ["uk", "ru", "de"])
def test_pdf_is_tagged_with_title_language_and_embedded_fonts(lang: str) -> None:
    html = render_letter_html(make_letter(lang))
    reader = PdfReader(io.BytesIO(typeset_pdf(html)))
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"]) and "/StructTreeRoot" in root
    assert root["/Lang"] == lang
    assert reader.metadata is not None and reader.metadata.title == document_tree(html)["title"]
    assert reader.metadata.title == parse(html).iter("title")[0].text()
    fonts = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            fonts[str(font["/BaseFont"])] = descendant["/FontDescriptor"].get_object()
    assert fonts and all("Libertinus" in name for name in fonts), fonts  # the compiler's own font, no system font
    assert all({"/FontFile", "/FontFile2", "/FontFile3"} & set(d) for d in fonts.values())


def test_document_language_drives_the_pdf_language_and_packets_are_german() -> None:
    packet = make_packet(entry(ACCEPTED, True), entry(PENDING, False))
    tree = document_tree(render_packet_html(packet))
    assert (tree["lang"], tree["region"]) == ("de", None)
    reader = PdfReader(io.BytesIO(render_packet_pdf(render_packet_html(packet))))
    assert reader.trailer["/Root"]["/Lang"] == "de"


def test_renderer_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    html = render_packet_html(make_packet(entry(ACCEPTED, True)))
    assert pdf_renderer({}) == "typst"
    assert render_packet_pdf(html) == typeset_pdf(html)
    monkeypatch.setenv("REMATCH_PDF_RENDERER", "weasyprint")
    meta = PdfReader(io.BytesIO(render_packet_pdf(html))).metadata
    assert meta is not None and "WeasyPrint" in str(meta.producer)
    with pytest.raises(ValueError, match="REMATCH_PDF_RENDERER"):
        pdf_renderer({"REMATCH_PDF_RENDERER": "chrome"})


def test_text_outside_known_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        document_tree('<html lang="de"><head><title>T</title></head><body>lose <b>Text</b></body></html>')


class _StandardParser(HTMLParser):
    """Python's own HTML parser driving the same tree builder: the yardstick for the fast reader."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = typeset._TreeBuilder()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.builder.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.builder.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        self.builder.handle_data(data)


def _read(html: str, standard: bool) -> tuple[str, str, Any]:
    if standard:
        parser = _StandardParser()
        parser.feed(html)
        parser.close()
        builder = parser.builder
    else:
        builder = typeset._TreeBuilder()
        builder.feed(html)
    return builder.lang, builder.title, typeset._tidy(builder.root["children"])


def test_fast_reader_reads_our_documents_as_pythons_html_parser_does(
        generated_round: tuple[list[PacketInput], list[LetterInput]]) -> None:
    """Rule: the document tree comes from the HTML exactly as a standard parser reads it (the PDF says what the HTML
    says): every packet and every letter in every language of a generated round, and free text full of markup."""
    packets, letters = generated_round
    hostile = 'a < b & c > d "e" \'f\' <!-- g --> <br/> &amp;lt; &#x3C;script&#x3E; `h` =i= <span>'
    htmls = [render_packet_html(p) for p in packets]
    htmls += [render_letter_html(replace(x, language=lang)) for x in letters[:3] for lang in available_languages()]
    htmls.append(render_letter_html(make_letter("de", household=replace(
        make_letter("de").household, contact_name=hostile, notes=hostile))))
    # A dotted capital I lowers to two characters: the end of the style element must still be found.
    turkish = replace(packets[0], offer=replace(packets[0].offer, municipality_name="İnegöl <İ>"))
    htmls.append(render_packet_html(turkish))
    for html in htmls:
        assert _read(html, standard=False) == _read(html, standard=True)
    assert len(htmls) >= len(packets) + 16 and document_tree(htmls[-1])["blocks"]


def _printable_characters() -> list[str]:
    chars = []
    for piece in re.findall(r".-.|.", typeset.PRINTABLE, re.S):
        first, last = (piece[0], piece[2]) if len(piece) == 3 else (piece, piece)
        chars += [chr(c) for c in range(ord(first), ord(last) + 1)]
    return chars


def test_every_printable_character_prints_and_is_a_character() -> None:
    """Rule: the characters the PDF keeps are those the pinned Typst's fonts draw under PDF/UA (a probe of all of them
    in one letter); none is unassigned."""
    chars = [c for c in _printable_characters() if c not in "\t\n\r"]
    assert len(chars) > 900 and all(unicodedata.category(c) not in ("Cn", "Co", "Cs", "Cc") for c in chars)
    text = " ".join("".join(chars[i:i + 40]) for i in range(0, len(chars), 40))
    html = render_letter_html(make_letter("de", household=replace(make_letter("de").household, contact_name=text)))
    assert typeset_pdf(html)  # PDF/UA export refuses any character its fonts cannot show


@pytest.mark.parametrize("odd", ["🌻👍", "中文", "ትግርኛ", "\x01\x1f", "\x9b", "\u0378", "\ufffe", "\u202e", "\u200b"])
def test_characters_the_fonts_cannot_show_print_as_replacement_not_as_a_failure(odd: str) -> None:
    """Rule: free text a household or a spreadsheet sends (an emoji in a name, a control character in the notes)
    never stops its packet or letter from printing: the PDF shows U+FFFD there, the HTML keeps what was sent."""
    hh = replace(make_letter("uk").household, consent_health_share=True, notes=f"Notiz {odd} Ende",
                 contact_name=f"Olena {odd} Koval")
    packet = make_packet(entry(hh, ACCEPTED))
    letter = make_letter("uk", household=hh)
    for html in (render_packet_html(packet), render_letter_html(letter)):
        text = _squeeze(pdf_text(typeset_pdf(html)))
        assert "Koval" in text and "\ufffd" in text
        assert not any(c in text for c in odd)
