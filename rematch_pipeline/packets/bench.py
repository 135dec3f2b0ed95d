"""`rematch bench packets`: render every municipality packet (and offer letter) of a generated round, timed."""

from __future__ import annotations

import io
import os
import re
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

from rematch_pipeline import progress
from rematch_pipeline.config import DEFAULT_PSEUDONYM_SALT, load_policy, policy_with
from rematch_pipeline.domain import pseudonym
from rematch_pipeline.packets.letters import LetterInput, letter_language, letter_stem, render_letter_html
from rematch_pipeline.packets.render import (
    PacketHousehold,
    PacketInput,
    packet_stem,
    render_packet_html,
    render_packet_pdf_weasyprint,
    write_atomic,
)
from rematch_pipeline.packets.typeset import render_pool, typeset_pdf
from rematch_pipeline.reports.charts import counted

SAMPLE_DOCUMENTS = 8  # packets (and as many letters) the old renderer prints in the same run: its per-page figure
CONTACT = "Re:Match Koordinationsteam"
RENDERERS: dict[str, Callable[[str], bytes]] = {"typst": typeset_pdf, "weasyprint": render_packet_pdf_weasyprint}
_PAGE_RE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def round_documents(households: int, municipalities: int, seed: int, time_limit_s: float
                    ) -> tuple[list[PacketInput], list[LetterInput]]:
    """A generated round solved, as the packets and letters its offers would give (every household pending)."""
    # Imported here: the render workers import this module, and need none of the solver or the scenario reader.
    from rematch_pipeline.bench import BENCH_DATE
    from rematch_pipeline.matching.engine import match
    from rematch_pipeline.scenario import generate_scenario
    from rematch_pipeline.scenario_load import load_scenario

    policy = policy_with(load_policy(), time_limit_s=time_limit_s)
    with tempfile.TemporaryDirectory() as tmp, progress.step("generating and reading the scenario"):
        files = generate_scenario(Path(tmp), households=households, municipalities=municipalities, seed=seed,
                                  round_date=BENCH_DATE)
        hh, offers = load_scenario(files.households_xlsx, files.capacity_xlsx)
    result = match(hh, offers, BENCH_DATE, policy, "R-BENCH")
    by_case = {h.case_id: h for h in hh}
    offer_of = {o.offer_id: o for o in offers}
    respond_by = BENCH_DATE + timedelta(days=policy.offer_response_days)
    by_offer: dict[str, list[PacketHousehold]] = {}
    letters = []
    for a in sorted(result.assignments, key=lambda a: a.case_id):
        alias = pseudonym(a.case_id, DEFAULT_PSEUDONYM_SALT)
        by_offer.setdefault(a.offer_id, []).append(PacketHousehold(by_case[a.case_id], a, alias, accepted=False))
        letters.append(LetterInput("R-BENCH", BENCH_DATE, by_case[a.case_id], a, offer_of[a.offer_id], respond_by,
                                   letter_language(by_case[a.case_id]), CONTACT, policy, alias))
    packets = [PacketInput("R-BENCH", BENCH_DATE, offer_of[oid], tuple(sorted(items, key=lambda p: p.pseudonym)),
                           CONTACT, respond_by, policy) for oid, items in sorted(by_offer.items())]
    return packets, letters


def _pages(pdf: bytes) -> int:
    found = len(_PAGE_RE.findall(pdf))
    if found:
        return found
    from pypdf import PdfReader  # page objects packed in object streams (WeasyPrint): read them properly

    return len(PdfReader(io.BytesIO(pdf)).pages)


def _render(doc: PacketInput | LetterInput, out_dir: Path, renderer: str) -> tuple[int, int]:
    """One document's HTML and PDF written as the pipeline writes them; its PDF's pages and bytes."""
    if isinstance(doc, PacketInput):
        html, stem = render_packet_html(doc), packet_stem(doc.offer.ags, doc.round_id)
    else:
        html, stem = render_letter_html(doc), letter_stem(doc.pseudonym, doc.round_id, doc.language)
    pdf = RENDERERS[renderer](html)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / f"{stem}.html", html.encode("utf-8"))
    write_atomic(out_dir / f"{stem}.pdf", pdf)
    return _pages(pdf), len(pdf)


def _figures(wall_s: float, results: Sequence[tuple[int, int]]) -> dict[str, Any]:
    pages = sum(p for p, _ in results)
    return {"wall_s": round(wall_s, 2), "documents": len(results), "pages": pages,
            "ms_per_page": round(1000 * wall_s / max(pages, 1), 2),
            "pdf_mb": round(sum(n for _, n in results) / 2**20, 1)}


def _sample(docs: Sequence[Any], n: int) -> list[Any]:
    return list(docs[::max(1, len(docs) // n)][:n])


GOAL_SIZE, GOAL_S = (10_000, 400), 180.0


def bench_packets(households: int, municipalities: int, seed: int, workers: int | None = None,
                  time_limit_s: float = 20.0, letters: bool = False) -> dict[str, Any]:
    """Time the round's documents (packets, with `letters` also every offer letter) on Typst in a process pool,
    and a sample on WeasyPrint, the renderer before it, in one process: both per page, measured in the same run."""
    workers = workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    packets, round_letters = round_documents(households, municipalities, seed, time_limit_s)
    prepare_s = time.perf_counter() - t0
    docs: list[PacketInput | LetterInput] = [*packets, *(round_letters if letters else [])]
    sample: list[PacketInput | LetterInput] = [*_sample(packets, SAMPLE_DOCUMENTS),
                                               *(_sample(round_letters, SAMPLE_DOCUMENTS) if letters else [])]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t1 = time.perf_counter()
        old = [_render(d, out / "weasyprint", "weasyprint")
               for d in progress.track(sample, "rendering a sample with WeasyPrint in one process", len(sample),
                                       "documents")]
        old_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        one = [_render(d, out / "typst-one", "typst") for d in sample]  # the same sample, one process
        one_s = time.perf_counter() - t2
        t3 = time.perf_counter()
        with render_pool(workers) as pool:
            new = list(progress.track(
                pool.map(_render, docs, repeat(out / "typst"), repeat("typst"),
                         chunksize=max(1, min(16, len(docs) // (8 * workers)))),
                f"rendering every document with Typst in {workers} processes", len(docs), "documents"))
        wall_s = time.perf_counter() - t3
    n_households = sum(len(p.households) for p in packets)
    return {
        "households_in_pool": households, "municipalities": municipalities, "seed": seed, "workers": workers,
        "packets": len(packets), "letters": len(round_letters) if letters else 0,
        "households_in_packets": n_households, "prepare_round_s": round(prepare_s, 2),
        "renderer": "typst", **_figures(wall_s, new),
        "ms_per_household": round(1000 * wall_s / max(n_households, 1), 1),
        "sample_typst_one_process": _figures(one_s, one),
        "sample_weasyprint_one_process": _figures(old_s, old),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # The goal is of the national round only: every document of 10,000 households x 400 municipalities.
        **({"goal_s": GOAL_S, "goal_met": wall_s <= GOAL_S} if (households, municipalities) == GOAL_SIZE else {}),
    }


def _rendered(f: dict[str, Any]) -> str:
    return (f"{counted(f['documents'], 'document')}, {counted(f['pages'], 'page')} in {f['wall_s']:.2f} s "
            f"({f['ms_per_page']:.1f} ms a page, {f['pdf_mb']:.1f} MB of PDF)")


def packets_lines(r: dict[str, Any]) -> list[str]:
    """The bench's figures for people (`--json` keeps every key)."""
    lines = [
        f"round: {counted(r['households_in_pool'], 'household')} generated, "
        f"{counted(r['municipalities'], 'municipality', 'municipalities')}, seed {r['seed']}; solved and prepared in "
        f"{r['prepare_round_s']:.2f} s",
        f"documents: {counted(r['packets'], 'packet')} (of the {counted(r['households_in_packets'], 'household')} "
        f"placed), {counted(r['letters'], 'letter')}",
        f"Typst in {counted(r['workers'], 'process', 'processes')}: {_rendered(r)}; {r['ms_per_household']:.1f} ms a "
        "household placed",
        f"sample on Typst, one process: {_rendered(r['sample_typst_one_process'])}",
        f"sample on WeasyPrint, one process: {_rendered(r['sample_weasyprint_one_process'])}",
        f"peak memory: {r['peak_rss_mb']:.1f} MB",
    ]
    if "goal_s" in r:
        lines.append(f"goal: every document within {r['goal_s']:.0f} s: " + ("met" if r["goal_met"] else "not met"))
    return lines
