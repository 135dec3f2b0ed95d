"""Who may do what in Airflow: the project's roles and login accounts, applied to the FAB auth manager."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"

DATA_TEAM = "rematch-data-team"
AUDITOR = "rematch-auditor"
ADMIN = "Admin"  # FAB's own role: everything, users and roles included

READ, EDIT, CREATE, DELETE = "can_read", "can_edit", "can_create", "can_delete"

# What an auditor reads: the DAGs, their runs, task states and logs. Not XComs, variables, connections or the
# configuration, which may hold paths, addresses or secrets.
_AUDIT_READS = ("Website", "DAGs", "DAG Runs", "DAG Code", "DAG Versions", "DAG Dependencies", "DAG Warnings",
                "Task Instances", "Task Logs", "Task Reschedules", "ImportError", "Audit Logs", "My Profile")
_TEAM_READS = _AUDIT_READS + ("XComs", "Pools", "Assets", "Asset Aliases", "Jobs", "Triggers", "Plugins",
                              "Providers", "Cluster Activity", "HITL Detail")

# The project's report views inside Airflow (rematch_pipeline/web.py), one resource each: auditors read every report
# but the packets, which name households and may hold health details; the data team reads them all.
ROUND_REPORTS, DATA_DOCS, AUDIT_EXPORTS = "Re:Match Round Reports", "Re:Match Data Docs", "Re:Match Audit Exports"
QUARANTINE, PACKETS = "Re:Match Quarantine", "Re:Match Packets"
REPORT_VIEWS = (ROUND_REPORTS, DATA_DOCS, AUDIT_EXPORTS, QUARANTINE, PACKETS)
_AUDIT_REPORTS = (ROUND_REPORTS, DATA_DOCS, AUDIT_EXPORTS, QUARANTINE)

# FAB checks a trigger as "create a DAG run" plus "edit the DAG", a clear as "edit task instances" plus "edit the
# DAG"; editing the DAG also (un)pauses it, which the data team needs since DAGs start paused.
ROLES: Mapping[str, frozenset[tuple[str, str]]] = {
    AUDITOR: frozenset((READ, r) for r in _AUDIT_READS + _AUDIT_REPORTS),
    DATA_TEAM: frozenset({(READ, r) for r in _TEAM_READS + REPORT_VIEWS}
                         | {(EDIT, "DAGs"), (CREATE, "DAG Runs"), (EDIT, "DAG Runs"), (DELETE, "DAG Runs"),
                            (EDIT, "Task Instances"), (EDIT, "My Profile"), (EDIT, "My Password"),
                            (READ, "My Password")}),
}


@dataclass(frozen=True)
class Account:
    """A login created at init: its role, and the environment variables naming it and its password."""

    role: str
    username_var: str
    password_var: str
    default_username: str | None  # None: the account is only created when its username is set


ACCOUNTS = (
    Account(ADMIN, "AIRFLOW_ADMIN_USERNAME", "AIRFLOW_ADMIN_PASSWORD", "admin"),
    Account(DATA_TEAM, "AIRFLOW_DATA_TEAM_USERNAME", "AIRFLOW_DATA_TEAM_PASSWORD", None),
    Account(AUDITOR, "AIRFLOW_AUDITOR_USERNAME", "AIRFLOW_AUDITOR_PASSWORD", None),
)
LOGIN_VARIABLES = tuple(v for a in ACCOUNTS for v in (a.username_var, a.password_var))


def password_dir(airflow_home: Path) -> Path:
    """Where generated passwords are written, one file per user, readable by the owner only."""
    return airflow_home / "passwords"


def sync(env: Mapping[str, str], say: Callable[[str], None] = print, *, require_passwords: bool = False) -> None:
    """Create or update the project's roles to exactly ROLES, and the accounts ACCOUNTS names in `env`.

    A password given in `env` is set on every sync; an account without one gets a random password on creation,
    written under password_dir(), and keeps it afterwards. With `require_passwords` (containers, whose home is not
    kept) a missing password is refused instead, before anything changes."""
    from airflow.configuration import AIRFLOW_HOME
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    if require_passwords:
        missing = [a.password_var for a in ACCOUNTS
                   if (env.get(a.username_var) or a.default_username) and not env.get(a.password_var)]
        if missing:
            raise ValueError(f"set {', '.join(missing)} in .env: every login needs its password there")
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        for name, wanted in ROLES.items():
            _sync_role(sm, name, wanted)
        _sync_role(sm, ADMIN, frozenset((READ, view) for view in REPORT_VIEWS), trim=False)  # FAB's own role
        for account in ACCOUNTS:
            username = env.get(account.username_var) or account.default_username
            if username:
                _sync_user(sm, account, username, env.get(account.password_var), Path(AIRFLOW_HOME), say)
    say(f"roles {', '.join(ROLES)} are up to date")


def _sync_role(sm: Any, name: str, wanted: frozenset[tuple[str, str]], *, trim: bool = True) -> None:
    """Give the role every wanted permission; with `trim`, take away every other one."""
    role = sm.find_role(name) or sm.add_role(name)
    have = {(p.action.name, p.resource.name): p for p in role.permissions}
    for action, resource in sorted(wanted - have.keys()):
        sm.add_permission_to_role(role, sm.create_permission(action, resource))
    for key in (have.keys() - wanted) if trim else ():
        sm.remove_permission_from_role(role, have[key])


def _write_password(folder: Path, username: str, password: str, variable: str) -> Path:
    """The generated password in a file only its owner reads, whatever a file left there earlier allowed."""
    if not username or "/" in username or "\\" in username or username.startswith("."):
        raise ValueError(f"{variable} must be a plain user name (no '/', '\\' or leading '.')")
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    where = folder / username
    fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file left by an earlier init keeps its mode through os.open
        os.write(fd, (password + "\n").encode())
    finally:
        os.close(fd)
    return where


def _sync_user(sm: Any, account: Account, username: str, password: str | None, airflow_home: Path,
               say: Callable[[str], None]) -> None:
    role = sm.find_role(account.role)
    user = sm.find_user(username=username)
    if user is None:
        if not password:
            password = secrets.token_urlsafe(18)
            where = _write_password(password_dir(airflow_home), username, password, account.username_var)
            say(f"{account.password_var} is not set: the password of {username} was generated into {where}")
        if not sm.add_user(username, username, account.role, f"{username}@localhost", role, password):
            raise RuntimeError(f"could not create the Airflow user {username}")
        say(f"created {username} with role {account.role}")
        return
    if password:
        sm.reset_password(user.id, password)
    if role not in user.roles:
        user.roles = [*user.roles, role]
        sm.update_user(user)
    say(f"{username} has role {account.role}")
