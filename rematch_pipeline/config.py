"""Settings from the environment and the policy file: the only module that reads environment variables."""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import logging
import math
import os
import re
import threading
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rematch_pipeline.clock import Clock, SystemClock
from rematch_pipeline.domain import LOOK_AHEAD_METHODS, ROOM_CLASSES, Policy, SolverSettings
from rematch_pipeline.ingest.safety import Limits

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# The libraries' own telemetry stays off in every process that loads our settings (GX sends usage statistics
# unless told not to; this is read when a data context is created).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")
DEFAULT_EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "expectations"
DEFAULT_COORDINATION_CONTACT = "Re:Match Koordinationsteam"
DEFAULT_SMTP_CONN_ID = "rematch_smtp"
# A batch with more than this share of invalid rows is held for review instead of partly loaded.
DEFAULT_MAX_INVALID_SHARE = 0.5
DEFAULT_SQLITE_BUSY_TIMEOUT_S = 30.0
DEFAULT_INGEST_SCHEDULE = "*/15 * * * *"  # every 15 minutes
DEFAULT_ROUND_SCHEDULE = "0 6 * * 1"  # one matching round a week, Monday 06:00 UTC
# Pseudonyms are sha256(salt:case_id); the salt is a secret of the deployment, never part of the policy or of any
# export. This default (the one policy.toml carried before) serves the embedded default and the tests only.
DEFAULT_PSEUDONYM_SALT = "rematch"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    # Every "now" and "today" of the application is read from here: the system clock in production (load_settings),
    # a clock set by hand in tests and replays. No default, so nothing can forget to choose.
    clock: Clock = field(compare=False)
    # As the packets and letters print it; see `reachable_contact`.
    coordination_contact: str = DEFAULT_COORDINATION_CONTACT
    inbox_url: str = ""  # any fsspec URL (e.g. s3://bucket/inbox); empty: the local `inbox`
    smtp_conn_id: str | None = None  # the Airflow connection to deliver through; None: the outbox is the delivery
    limits: Limits = field(default_factory=Limits)  # sizes refused before any parser sees a file
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE
    sqlite_busy_timeout_s: float = DEFAULT_SQLITE_BUSY_TIMEOUT_S  # then the writer stops (exit 3) and retries later
    expectations_dir: Path = DEFAULT_EXPECTATIONS_DIR
    policy_file: Path = DEFAULT_POLICY_FILE
    ingest_schedule: str = DEFAULT_INGEST_SCHEDULE  # cron expressions, read when the DAGs are parsed
    round_schedule: str = DEFAULT_ROUND_SCHEDULE
    pseudonym_salt: str = field(default=DEFAULT_PSEUDONYM_SALT, repr=False)

    def engine(self) -> Engine:
        from rematch_pipeline.db.engine import get_engine

        return get_engine(self.database_url, self.sqlite_busy_timeout_s)

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
            if p.exists() and not p.is_dir():  # mkdir would say only "File exists"
                raise NotADirectoryError(errno.ENOTDIR, "this is a file, where REMATCH_HOME needs a folder", str(p))
            p.mkdir(parents=True, exist_ok=True)


log = logging.getLogger(__name__)


def configure_logging(level: int) -> None:
    """The command's log lines (and a second process's, alike): time, level, logger, message."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Our steps at INFO; Great Expectations' own INFO (hundreds of lines a file) would bury them.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A phone number: at least 7 ASCII digits, grouped by spaces, slashes, hyphens or brackets, maybe after a plus.
_PHONE = re.compile(r"(?<![\w.:])\+?[0-9][0-9 ()/-]{5,}[0-9](?![\w.:])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}")
CONTACT_MAX_CHARS = 200


def is_reachable(contact: str) -> bool:
    """Whether a contact gives a way to reach someone: an e-mail address, or a phone number (not a date)."""
    if _EMAIL.search(contact):
        return True
    return any(sum(c.isdigit() for c in m.group()) >= 7 and not _DATE.fullmatch(m.group().strip())
               for m in _PHONE.finditer(contact))


def contact_problem(contact: str) -> str | None:
    """Why a coordination contact cannot be printed on letters and packets, or None."""
    import unicodedata

    if not contact.strip():
        return "the coordination contact is empty"
    if len(contact) > CONTACT_MAX_CHARS:
        return f"the coordination contact is longer than {CONTACT_MAX_CHARS} characters"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs") for c in contact):
        return "the coordination contact holds control or invisible formatting characters; type it as one line"
    if not is_reachable(contact):
        return ("the coordination contact gives no e-mail address or phone number besides the name: households "
                "answer their offer there")
    return None


CONTACT_HINT = ("set it with `rematch config set coordination_contact \"Name, e-mail or phone\"`, or with "
                "REMATCH_COORDINATION_CONTACT, which wins when it is set")


class UnreachableContact(ValueError):
    """Packets and letters would give no way to reach the coordination team: nothing is rendered."""


def reachable_contact(settings: Settings) -> str:
    """The coordination team as packets and letters print it, or UnreachableContact before anything is rendered.

    Letters tell households to give their answer to the team and packets tell caseworkers whom to ask, so the value
    must carry an e-mail address or a phone number besides the name (`contact_problem`).
    """
    problem = contact_problem(settings.coordination_contact)
    if problem:
        raise UnreachableContact(f"No packet or letter was rendered: {problem}; {CONTACT_HINT}.")
    return settings.coordination_contact


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float = math.inf) -> float:
    """A numeric setting, or a plain sentence naming the variable when it is not a number in [low, high]."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails both
        upper = "" if math.isinf(high) else f" and at most {high:g}"
        raise ValueError(f"{name} must be a number of at least {low:g}{upper}, not {raw.strip()[:40]!r}")
    return value


def _limits(env: Mapping[str, str]) -> Limits:
    d = Limits()
    mib = 2**20
    return Limits(
        max_file_bytes=int(_number(env, "REMATCH_MAX_FILE_MB", d.max_file_bytes / mib, 0.001) * mib),
        max_zip_ratio=_number(env, "REMATCH_MAX_ZIP_RATIO", d.max_zip_ratio, 1),
        max_unzipped_bytes=int(_number(env, "REMATCH_MAX_UNZIPPED_MB", d.max_unzipped_bytes / mib, 0.001) * mib),
        max_zip_entries=int(_number(env, "REMATCH_MAX_ZIP_ENTRIES", d.max_zip_entries, 1)),
    )


# Settings that change what households and municipalities read are kept with the home they belong to, so every
# later command and DAG run of that home prints the same (`rematch config set`); the environment variable wins.
HOME_SETTINGS_FILE = "settings.toml"
HOME_SETTINGS = {"coordination_contact": "REMATCH_COORDINATION_CONTACT"}


def home_settings(home: Path) -> dict[str, str]:
    """The settings kept in `REMATCH_HOME/settings.toml` (empty without the file)."""
    path = home / HOME_SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # an editor may add a BOM
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid TOML ({str(exc)[:80]}): fix or remove it") from None
    unknown = sorted(set(raw) - set(HOME_SETTINGS))
    if unknown or not all(isinstance(v, str) for v in raw.values()):
        raise ValueError(f"{path} may only hold text values for {', '.join(sorted(HOME_SETTINGS))}"
                         + (f", not {', '.join(unknown)}" if unknown else ""))
    return {k: v.strip() for k, v in raw.items()}


def save_home_setting(home: Path, name: str, value: str) -> Path:
    """Keep one setting in `REMATCH_HOME/settings.toml` (written whole, then moved into place)."""
    if name not in HOME_SETTINGS:
        raise ValueError(f"{name} is not a setting kept in the home; these are: {', '.join(sorted(HOME_SETTINGS))}")
    value = value.strip()
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{name} must be one line of text")
    kept = {**home_settings(home), name: value}
    home.mkdir(parents=True, exist_ok=True)
    path = home / HOME_SETTINGS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Kept by `rematch config set`; an environment variable of the same name wins.\n"
                   + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in sorted(kept.items())),
                   encoding="utf-8")
    tmp.replace(path)
    return path


def environment(names: Iterable[str]) -> dict[str, str]:
    """The named variables that are set, for a step that is not a Re:Match setting (Airflow's logins at init)."""
    return {name: os.environ[name] for name in names if name in os.environ}


def setting_sources(home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where each home setting's value comes from: the environment variable, the home's file or the default."""
    env = os.environ if env is None else env
    kept = home_settings(home)
    return {name: var if env.get(var, "").strip() else (HOME_SETTINGS_FILE if kept.get(name) else "default")
            for name, var in HOME_SETTINGS.items()}


def load_settings(env: Mapping[str, str] | None = None, clock: Clock | None = None) -> Settings:
    """Every setting from the environment (`os.environ` unless `env` is given), read once; see the README's table.
    The home's `settings.toml` fills what the environment leaves unset."""
    env = os.environ if env is None else env
    home = Path(env.get("REMATCH_HOME", "./var")).resolve()
    kept = home_settings(home)
    smtp = env.get("REMATCH_SMTP_CONN_ID") or (
        DEFAULT_SMTP_CONN_ID if env.get(f"AIRFLOW_CONN_{DEFAULT_SMTP_CONN_ID.upper()}") else None)
    return Settings(
        home=home,
        database_url=env.get("REMATCH_DATABASE_URL") or f"sqlite:///{home / 'rematch.sqlite'}",
        clock=clock or SystemClock(),
        coordination_contact=(env.get("REMATCH_COORDINATION_CONTACT", "").strip() or kept.get("coordination_contact")
                              or DEFAULT_COORDINATION_CONTACT),
        inbox_url=env.get("REMATCH_INBOX_URL", ""),
        smtp_conn_id=smtp,
        limits=_limits(env),
        max_invalid_share=_number(env, "REMATCH_MAX_INVALID_SHARE", DEFAULT_MAX_INVALID_SHARE, 0, 1),
        sqlite_busy_timeout_s=_number(env, "REMATCH_SQLITE_BUSY_TIMEOUT_S", DEFAULT_SQLITE_BUSY_TIMEOUT_S, 0),
        expectations_dir=Path(env.get("REMATCH_EXPECTATIONS_DIR") or DEFAULT_EXPECTATIONS_DIR),
        policy_file=Path(env.get("REMATCH_POLICY_FILE") or DEFAULT_POLICY_FILE),
        ingest_schedule=env.get("REMATCH_INGEST_SCHEDULE") or DEFAULT_INGEST_SCHEDULE,
        round_schedule=env.get("REMATCH_ROUND_SCHEDULE") or DEFAULT_ROUND_SCHEDULE,
        pseudonym_salt=env.get("REMATCH_PSEUDONYM_SALT") or DEFAULT_PSEUDONYM_SALT,
    )


PDF_RENDERERS = ("typst", "weasyprint")


def pdf_renderer(env: Mapping[str, str] | None = None) -> str:
    """What prints packets and letters to PDF (REMATCH_PDF_RENDERER): Typst, or WeasyPrint, the printer before it."""
    env = os.environ if env is None else env
    name = env.get("REMATCH_PDF_RENDERER", "").strip().lower() or PDF_RENDERERS[0]
    if name not in PDF_RENDERERS:
        raise ValueError(f"REMATCH_PDF_RENDERER must be one of {', '.join(PDF_RENDERERS)}")
    return name


_LIBRARY_ENV_LOCK = threading.Lock()


@contextmanager
def fixed_font_timestamps() -> Iterator[None]:
    """Pin fontTools' subset-font timestamps (SOURCE_DATE_EPOCH) while a PDF renders, then restore the environment.

    WeasyPrint subsets fonts with HarfBuzz (libharfbuzz-subset0), which writes no timestamp; without that library it
    falls back to fontTools, which stamps the current time into each embedded font unless SOURCE_DATE_EPOCH is set.
    Not a setting of ours but the environment a library reads, so it is written here; one render at a time holds it.
    """
    with _LIBRARY_ENV_LOCK:
        prior = os.environ.get("SOURCE_DATE_EPOCH")
        if prior is None:
            os.environ["SOURCE_DATE_EPOCH"] = "0"
        try:
            yield
        finally:
            if prior is None:
                os.environ.pop("SOURCE_DATE_EPOCH", None)


def _flat_policy_file(path: Path) -> dict[str, object]:
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    flat: dict[str, object] = {}
    for section in raw.values():
        if isinstance(section, dict):
            flat.update(section)
    return flat


RETIRED_POLICY_SETTINGS = frozenset({"pseudonym_salt"})  # now a setting of the deployment (Settings)
POLICY_SETTINGS = frozenset(f.name for f in fields(Policy)) - {"solver"}
SOLVER_SETTINGS = frozenset(f.name for f in fields(SolverSettings))


def exported_policy(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """A round's stored policy as exports show it: without what left the policy (a round stored before may hold the
    pseudonym salt, a secret)."""
    return {k: v for k, v in (stored or {}).items() if k not in RETIRED_POLICY_SETTINGS}


@functools.cache
def _shipped_policy() -> dict[str, object]:
    return _flat_policy_file(DEFAULT_POLICY_FILE)


def shipped_policy() -> Policy:
    """The shipped policy.toml, whatever REMATCH_POLICY_FILE says (generated scenarios are sized by it)."""
    return policy_from_dict({})


def load_policy(path: str | Path | None = None, overrides: dict[str, object] | None = None) -> Policy:
    """Read the policy file (`path`, else REMATCH_POLICY_FILE, else the shipped default) and apply overrides."""
    path = Path(path or load_settings().policy_file)
    flat = {**_flat_policy_file(path), **(overrides or {})}
    if "pseudonym_salt" in flat:
        raise ValueError(f"policy file {path}: pseudonym_salt is no longer a policy setting; set it as "
                         "REMATCH_PSEUDONYM_SALT (a secret of the deployment, never exported with a round)")
    unknown = sorted(set(flat) - POLICY_SETTINGS - SOLVER_SETTINGS)
    if unknown:
        raise ValueError(f"policy file {path}: unknown setting(s) {', '.join(unknown)}")
    policy = policy_from_dict(flat)
    validate_policy(policy, path)
    return policy


def policy_from_dict(flat: Mapping[str, object]) -> Policy:
    """A Policy from flat settings as read from TOML or stored as JSON with a round (lists become tuples).

    A setting the source does not name takes the shipped policy.toml's value, the one home of every default: a
    team's own file may set only what it changes, and a round stored before a setting existed reads as it ran.
    """
    values: dict[str, object] = {}
    for name, value in {**_shipped_policy(), **flat}.items():
        if name in RETIRED_POLICY_SETTINGS:
            continue  # a round stored before it left the policy
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[name] = value
    solver = SolverSettings(**{k: v for k, v in values.items() if k in SOLVER_SETTINGS})  # type: ignore[arg-type]
    return Policy(**{k: v for k, v in values.items() if k in POLICY_SETTINGS}, solver=solver)  # type: ignore[arg-type]


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """A Policy as flat settings, as policy.toml names them and every round stores and exports them."""
    flat = {k: v for k, v in dataclasses.asdict(policy).items() if k != "solver"}
    return {**flat, **dataclasses.asdict(policy.solver)}


def policy_with(policy: Policy, **changes: object) -> Policy:
    """The policy with some settings changed, named as in policy.toml (policy and solver settings alike)."""
    unknown = sorted(set(changes) - POLICY_SETTINGS - SOLVER_SETTINGS)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}")
    return policy_from_dict({**policy_to_dict(policy), **changes})


MAX_LOOK_AHEAD_ROUNDS = 52  # a year of weekly rounds: as far as an arrival mix stays current
MAX_WEIGHT = 1e6  # points: far above any useful weight, far below where floating-point sums lose persons


def validate_policy(policy: Policy, source: object = "policy") -> None:
    """Refuse a policy the model cannot honour, with a message naming the setting."""
    rooms = [k for _, k in policy.rooms_by_persons]
    if any(k not in ROOM_CLASSES for k in rooms):
        raise ValueError(f"{source}: rooms_by_persons may only name room classes {list(ROOM_CLASSES)}, got {rooms}")
    if min((m for m, _ in policy.rooms_by_persons), default=2) != 1:
        raise ValueError(f"{source}: rooms_by_persons must start at households of 1 person")
    solver = policy.solver
    if not 0 <= solver.mip_rel_gap < 1 or solver.time_limit_s <= 0 or solver.candidates_per_household < 1:
        raise ValueError(f"{source}: mip_rel_gap must be in [0, 1), time_limit_s > 0, candidates_per_household >= 1")
    for name, what in (("balanced_fill_weight", "balanced fill"), ("waiting_weight_per_week", "the waiting priority"),
                       ("look_ahead_weight", "the look-ahead")):
        value = getattr(policy, name)
        # A number of points: not text or true/false, and small enough that the solver's arithmetic stays exact.
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_WEIGHT:
            raise ValueError(f"{source}: {name} must be a number from 0 to {MAX_WEIGHT:,.0f} (0 switches {what} off)")
    if policy.look_ahead_method not in LOOK_AHEAD_METHODS:
        raise ValueError(f"{source}: look_ahead_method must be one of {', '.join(LOOK_AHEAD_METHODS)}")
    for name, most in (("look_ahead_rounds", MAX_LOOK_AHEAD_ROUNDS), ("look_ahead_samples", 20),
                       ("look_ahead_interval_days", 365)):
        value = getattr(policy, name)
        # Whole numbers within reach: each sample is one LP, and a year of rounds is as far as a mix stays current.
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise ValueError(f"{source}: {name} must be a whole number from 1 to {most}")
