"""Settings from the environment (REMATCH_HOME, REMATCH_DATABASE_URL) and the policy file; chosen in this one place."""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from rematch_pipeline.clock import Clock, SystemClock
from rematch_pipeline.domain import ROOM_CLASSES, Policy

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    # Every "now" and "today" of the application is read from here: the system clock in production (load_settings),
    # a clock set by hand in tests and replays. No default, so nothing can forget to choose.
    clock: Clock = field(compare=False)

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def data_docs(self) -> Path:
        return self.home / "data_docs"

    @property
    def gx_root(self) -> Path:
        return self.home / "gx"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    def ensure_dirs(self) -> None:
        for p in (self.home, self.inbox, self.archive, self.outbox, self.data_docs, self.exports):
            p.mkdir(parents=True, exist_ok=True)


log = logging.getLogger(__name__)

DEFAULT_COORDINATION_CONTACT = "Re:Match Koordinationsteam"
_REACHABLE = re.compile(r"@|\d[\d ()/.-]{5,}\d")  # an e-mail address or a phone number


def coordination_contact(env: dict[str, str] | None = None) -> str:
    """The coordination team as packets and letters print it (REMATCH_COORDINATION_CONTACT).

    Letters tell households to give their answer to the team, so the value should carry an e-mail address or a
    phone number besides the name; without either a warning says so at every render (households can then only
    answer through their interviewer).
    """
    env = dict(os.environ) if env is None else env
    value = env.get("REMATCH_COORDINATION_CONTACT", "").strip() or DEFAULT_COORDINATION_CONTACT
    if not _REACHABLE.search(value):
        log.warning("REMATCH_COORDINATION_CONTACT (%r) gives no e-mail address or phone number: the offer letters "
                    "cannot tell households how to reach the coordination team", value)
    return value


def sqlite_busy_timeout_s(env: dict[str, str] | None = None) -> float:
    """How long a SQLite writer waits for another run's write (REMATCH_SQLITE_BUSY_TIMEOUT_S), then stops (exit 3)."""
    env = dict(os.environ) if env is None else env
    return float(env.get("REMATCH_SQLITE_BUSY_TIMEOUT_S", "30"))


def load_settings(env: dict[str, str] | None = None, clock: Clock | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    home = Path(env.get("REMATCH_HOME", "./var")).resolve()
    url = env.get("REMATCH_DATABASE_URL") or f"sqlite:///{home / 'rematch.sqlite'}"
    return Settings(home=home, database_url=url, clock=clock or SystemClock())


def load_policy(path: str | Path | None = None, overrides: dict[str, object] | None = None) -> Policy:
    """Read the policy file (REMATCH_POLICY_FILE or the shipped default) and apply overrides."""
    path = Path(path or os.environ.get("REMATCH_POLICY_FILE") or DEFAULT_POLICY_FILE)
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    flat: dict[str, object] = {}
    for section in raw.values():
        if isinstance(section, dict):
            flat.update(section)
    flat.update(overrides or {})
    known = {f.name: f for f in fields(Policy)}
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise ValueError(f"policy file {path}: unknown setting(s) {', '.join(unknown)}")
    policy = policy_from_dict(flat)
    validate_policy(policy, path)
    return policy


def policy_from_dict(flat: dict[str, object]) -> Policy:
    """A Policy from flat settings as read from TOML or stored as JSON with a round (lists become tuples)."""
    values: dict[str, object] = {}
    for name, value in flat.items():
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[name] = value
    return Policy(**values)  # type: ignore[arg-type]


def validate_policy(policy: Policy, source: object = "policy") -> None:
    """Refuse a policy the model cannot honour, with a message naming the setting."""
    rooms = [k for _, k in policy.rooms_by_persons]
    if any(k not in ROOM_CLASSES for k in rooms):
        raise ValueError(f"{source}: rooms_by_persons may only name room classes {list(ROOM_CLASSES)}, got {rooms}")
    if min((m for m, _ in policy.rooms_by_persons), default=2) != 1:
        raise ValueError(f"{source}: rooms_by_persons must start at households of 1 person")
    if not 0 <= policy.mip_rel_gap < 1 or policy.time_limit_s <= 0 or policy.candidates_per_household < 1:
        raise ValueError(f"{source}: mip_rel_gap must be in [0, 1), time_limit_s > 0, candidates_per_household >= 1")
    if not math.isfinite(policy.balanced_fill_weight) or policy.balanced_fill_weight < 0:
        raise ValueError(f"{source}: balanced_fill_weight must be >= 0 (0 switches balanced fill off)")
