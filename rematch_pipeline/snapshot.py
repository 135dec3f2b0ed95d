"""The inputs of one round as canonical JSON (what the solver saw, no contact data): stored, hashed, replayed."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from rematch_pipeline.config import policy_from_dict, policy_to_dict
from rematch_pipeline.domain import CapacityOffer, Consumption, Household, Member, Policy

# Contact data and free text never enter a snapshot: the solver does not use them.
PERSONAL_FIELDS = ("contact_name", "contact_phone", "contact_email", "notes", "interview_location")


@dataclass
class RoundInputs:
    round_id: str
    round_date: date
    policy: Policy
    households: list[Household]
    offers: list[CapacityOffer]
    declined: dict[str, set[str]]  # case_id -> AGS the household declined earlier
    consumed: dict[str, Consumption]  # offer_id -> capacity taken by accepted and still pending offers
    # Look-ahead rounds only: the households that entered the pool since the last round (the mix their futures are
    # drawn from). None, and absent from the snapshot, when the policy does not look ahead.
    arrivals: list[str] | None = None
    # Look-ahead rounds only: offers that open after the round date, before its last coming round (the look-ahead
    # plans with them; the round itself cannot place anyone there). None, and absent from the snapshot, otherwise.
    later_offers: list[CapacityOffer] | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {
            "round_id": self.round_id,
            "round_date": self.round_date.isoformat(),
            "policy": policy_to_dict(self.policy),
            "households": [household_json(h) for h in self.households],
            "capacity_offers": [offer_json(o) for o in self.offers],
            "declined": {c: sorted(a) for c, a in sorted(self.declined.items())},
            "consumed": {oid: {"dimensions": dict(sorted(c.dimensions.items())),
                               "rooms_needed": sorted(c.rooms_needed)}
                         for oid, c in sorted(self.consumed.items())},
        }
        if self.arrivals is not None:
            doc["arrivals"] = sorted(self.arrivals)
        if self.later_offers is not None:
            doc["later_capacity_offers"] = [offer_json(o) for o in self.later_offers]
        return doc

    def checksums(self) -> dict[str, str]:
        """sha256 of each input, as recorded with the round (contract §4: the input checksums)."""
        doc = self.to_json()
        return {key: sha256_json(doc[key]) for key in ("households", "capacity_offers", "declined", "consumed",
                                                          "policy")}


def household_json(h: Household) -> dict[str, Any]:
    d = dataclasses.asdict(h)
    for personal in PERSONAL_FIELDS:
        d.pop(personal, None)
    d["interview_date"] = h.interview_date.isoformat()
    d["weights"] = dict(sorted(h.weights.items()))
    return d


def offer_json(o: CapacityOffer) -> dict[str, Any]:
    d = dataclasses.asdict(o)
    d.pop("contact_email", None)
    d["valid_from"], d["valid_until"] = o.valid_from.isoformat(), o.valid_until.isoformat()
    d["medical_services"], d["job_sectors_shortage"] = sorted(o.medical_services), sorted(o.job_sectors_shortage)
    return d


def household_from_json(d: Mapping[str, Any]) -> Household:
    return Household(
        case_id=d["case_id"], interview_date=date.fromisoformat(d["interview_date"]),
        consent_matching=d["consent_matching"], consent_health_share=d["consent_health_share"],
        languages=tuple(d["languages"]), german_level=d["german_level"], wheelchair_access=d["wheelchair_access"],
        medical_needs=tuple(d["medical_needs"]), pets=d["pets"], pref_settlement=d["pref_settlement"],
        weights=dict(d["weights"]), members=tuple(Member(**m) for m in d["members"]), ties_ags=d.get("ties_ags"),
    )


def offer_from_json(d: Mapping[str, Any]) -> CapacityOffer:
    values = dict(d)
    values["valid_from"], values["valid_until"] = date.fromisoformat(d["valid_from"]), date.fromisoformat(
        d["valid_until"])
    values["medical_services"] = frozenset(d["medical_services"])
    values["job_sectors_shortage"] = frozenset(d["job_sectors_shortage"])
    return CapacityOffer(**values)


def inputs_from_json(doc: Mapping[str, Any]) -> RoundInputs:
    return RoundInputs(
        round_id=doc["round_id"], round_date=date.fromisoformat(doc["round_date"]),
        policy=policy_from_dict(doc["policy"]),
        households=[household_from_json(h) for h in doc["households"]],
        offers=[offer_from_json(o) for o in doc["capacity_offers"]],
        declined={c: set(a) for c, a in doc["declined"].items()},
        consumed={oid: Consumption(dimensions=dict(c["dimensions"]), rooms_needed=tuple(c["rooms_needed"]))
                  for oid, c in doc["consumed"].items()},
        arrivals=list(doc["arrivals"]) if "arrivals" in doc else None,
        later_offers=([offer_from_json(o) for o in doc["later_capacity_offers"]] if "later_capacity_offers" in doc
                      else None),
    )


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"), ensure_ascii=False)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


def pack(inputs: RoundInputs) -> tuple[bytes, str]:
    """gzip-compressed canonical JSON (mtime 0, so the bytes are reproducible) and its sha256."""
    text = canonical(inputs.to_json()).encode()
    return gzip.compress(text, mtime=0), hashlib.sha256(text).hexdigest()


def unpack(blob: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(gzip.decompress(blob))
    return doc
