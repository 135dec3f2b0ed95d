"""Render every packet of a round into the outbox, recorded in a ledger so reruns never duplicate a packet."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from rematch_pipeline.config import Settings, reachable_contact
from rematch_pipeline.contract import AGS_RE
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import Assignment, Household, Member, Policy, pseudonym
from rematch_pipeline.packets import versions
from rematch_pipeline.packets.letters import LetterInput, available_languages, write_letter
from rematch_pipeline.packets.render import PacketHousehold, PacketInput, render_packet_html, write_packet
from rematch_pipeline.packets.versions import DocumentKind, Files, files_not_as_recorded, render_all, restore
from rematch_pipeline.reports.charts import listed
from rematch_pipeline.repository import Ledger, reading, require_round, unit_of_work

log = logging.getLogger(__name__)

WITHDRAWN = ("declined", "expired", "withdrawn")  # offers whose households are not coming


def round_packet_inputs(settings: Settings, policy: Policy, round_id: str, ags: str | None = None) -> list[Any]:
    """One PacketInput per receiving municipality (offer) of the round, in AGS order."""
    with reading(settings) as uow:
        rnd = require_round(uow, round_id)
        assignments = [a for a in uow.rounds.assignments(round_id) if ags is None or a.ags == ags]
        # The answer to this round's offer decides what the municipality sees; before offers go out all are pending.
        answers = {o.case_id: o.status for o in uow.offers.of_round(round_id)}
        households = {h.case_id: h for h in uow.households.get_many(a.case_id for a in assignments)}
        offers = {o.offer_id: o for o in uow.capacity_offers.all()}
    by_offer: dict[str, list[Any]] = {}
    withdrawn: dict[str, dict[str, int]] = {}
    for a in assignments:
        answer = answers.get(a.case_id, "pending")
        by_offer.setdefault(a.offer_id, [])
        if answer in WITHDRAWN:
            by_status = withdrawn.setdefault(a.offer_id, {})  # they are not coming: their details go
            by_status[answer] = by_status.get(answer, 0) + 1
            continue
        by_offer[a.offer_id].append(PacketHousehold(
            household=households[a.case_id], assignment=a, pseudonym=pseudonym(a.case_id, settings.pseudonym_salt),
            accepted=answer == "accepted"))
    contact = reachable_contact(settings)
    offered = bool(answers)
    return [
        PacketInput(round_id=round_id, round_date=rnd.round_date, offer=offers[oid],
                    households=tuple(sorted(items, key=lambda ph: ph.pseudonym)), coordination_contact=contact,
                    response_deadline=rnd.round_date + timedelta(days=policy.offer_response_days), policy=policy,
                    withdrawn=withdrawn.get(oid, {}), final=offered and all(ph.accepted for ph in items))
        for oid, items in sorted(by_offer.items(), key=lambda kv: (offers[kv[0]].ags, kv[0]))
    ]


def _key(packet: Any) -> dict[str, str]:
    return {"round_id": packet.round_id, "ags": packet.offer.ags}


def _ledger(settings: Settings, packet: Any) -> tuple[str, Ledger]:
    """The packet's content hash and what the ledger holds for it (the same content, the latest version)."""
    digest = hashlib.sha256(render_packet_html(packet).encode("utf-8")).hexdigest()
    with reading(settings) as uow:
        return digest, uow.versions.look_up("packet", _key(packet), digest)


def _record(settings: Settings, packet: Any, digest: str, ledger: Ledger, kept: dict[str, str], files: Files,
            actor: str) -> dict[str, Any]:
    ags, round_id, version = packet.offer.ags, packet.round_id, ledger.next_version
    at = settings.clock.now()
    with unit_of_work(settings) as uow:
        uow.versions.add("packet", _key(packet), ledger, kept, {
            "html_path": str(files.html_path), "pdf_path": str(files.pdf_path), "sha256": digest, "created_at": at,
            "final": packet.final})
        uow.audit(actor, "packet_rendered", f"{round_id}/{ags}",
                  {"version": version, "final": packet.final, "html_sha256": files.html_sha256,
                   "pdf_sha256": files.pdf_sha256, "households": len(packet.households)}, at)
    log.info("packet %s/%s v%d rendered", round_id, ags, version)
    return {"ags": ags, "version": version, "new": True, "final": packet.final, "html_path": str(files.html_path),
            "pdf_path": str(files.pdf_path)}


def _unchanged(settings: Settings, packet: Any, same: Any, actor: str) -> dict[str, Any]:
    """The version already recorded with this content; its files written again if they are gone (retention deletes
    every packet that listed a purged household: one whose content did not change on re-render comes back)."""
    if files_not_as_recorded(same):
        restore(same, partial(write_packet, packet), settings, actor, "packet_restored",
                f"{packet.round_id}/{same.ags}")
    return {"ags": same.ags, "version": same.version, "new": False, "final": same.final,
            "html_path": same.html_path, "pdf_path": same.pdf_path}


PACKETS = DocumentKind("packets", _ledger, write_packet, _record, _unchanged)


def render_one(settings: Settings, packet: Any, actor: str = "cli") -> dict[str, Any]:
    """Write one packet unless the ledger already holds the same content; a changed packet becomes a new version."""
    return versions.render_one(settings, PACKETS, packet, actor)


def render_round_packets(settings: Settings, policy: Policy, round_id: str, actor: str = "cli",
                         workers: int = 1) -> list[dict[str, Any]]:
    """Render every packet of a round; with workers > 1 the changed ones are printed in parallel processes."""
    require_schema(settings.database_url)
    return render_all(settings, PACKETS, round_packet_inputs(settings, policy, round_id), actor, workers)


# The sample's letters are of a household that does not exist, so looking at every language's typesetting copies
# nobody's data: a couple with a child, no health needs, on the municipality's real offer.
SAMPLE_CASE_ID = "RM-SAMPLE-0001"
SAMPLE_TERMS = {"work": 2.5, "settlement": 2.0, "community": 1.5, "housing": 1.0, "culture": 0.5}


def _sample_letter(packet: PacketInput, language: str, contact: str, policy: Policy) -> LetterInput:
    born = packet.round_date.year
    household = Household(
        case_id=SAMPLE_CASE_ID, interview_date=packet.round_date, consent_matching=True, consent_health_share=False,
        languages=(language,), german_level="a1", wheelchair_access=False, medical_needs=(), pets="none",
        pref_settlement="any", weights={"work": 4, "education": 3, "community": 2, "healthcare": 1, "housing": 3,
                                        "culture": 1},
        members=(Member("head", "female", born - 38, False, "it", "bachelor"),
                 Member("spouse", "male", born - 40, False, "construction", "vocational"),
                 Member("child", "female", born - 9, False, "none", "none")))
    assignment = Assignment(round_id=packet.round_id, case_id=SAMPLE_CASE_ID, ags=packet.offer.ags, persons=3,
                            score=sum(SAMPLE_TERMS.values()), score_terms=SAMPLE_TERMS, preference_rank=1,
                            offer_id=packet.offer.offer_id)
    return LetterInput(round_id=packet.round_id, round_date=packet.round_date, household=household,
                       assignment=assignment, offer=packet.offer, respond_by=packet.response_deadline,
                       language=language, coordination_contact=contact, policy=policy, pseudonym="SAMPLE")


def render_sample(settings: Settings, policy: Policy, round_id: str, ags: str, out_dir: Path,
                  actor: str = "cli") -> list[Path]:
    """The municipality's packet as it prints now and a letter in every language (of a household that does not
    exist, on the municipality's offer), written to `out_dir` for a person to look at: not versioned, not
    delivered, recorded in the audit trail before anything is written."""
    if not AGS_RE.fullmatch(ags):
        raise ValueError("--sample needs the municipality's AGS: 8 digits")
    home = settings.home.resolve()
    if Path(out_dir).resolve().is_relative_to(home):
        raise ValueError("write the sample outside REMATCH_HOME: in the outbox or beside it, it would be taken for "
                         "the documents of the round")
    require_schema(settings.database_url)
    packets = round_packet_inputs(settings, policy, round_id, ags=ags)
    if not packets:
        with reading(settings) as uow:
            placed = sorted({a.ags for a in uow.rounds.assignments(round_id)})
        some = listed(placed)
        raise ValueError(f"round {round_id} placed no household in municipality {ags}: there is no packet to sample "
                         + (f"(municipalities with households in this round: {some})" if placed
                            else "(the round placed no household at all)"))
    contact = reachable_contact(settings)
    letters = [_sample_letter(packets[0], lang, contact, policy) for lang in available_languages()]
    with unit_of_work(settings) as uow:
        uow.audit(actor, "sample_rendered", f"{round_id}/{ags}",
                  {"packets": len(packets), "languages": [x.language for x in letters]}, settings.clock.now())
    files: list[Files] = [*(write_packet(p, out_dir) for p in packets), *(write_letter(x, out_dir) for x in letters)]
    return [path for f in files for path in (f.html_path, f.pdf_path)]
