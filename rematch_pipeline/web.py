"""The reports inside Airflow: round reports, Data Docs, audit exports, quarantine and packets, behind its login."""

import mimetypes
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.background import BackgroundTask

from rematch_pipeline import access
from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import SchemaNotReady, require_schema

# Under REMATCH_HOME the reports keep the layout the commands write, so the relative links between them (a round
# report's links to its Data Docs and export files) work unchanged when served. Only these paths are served; the
# rest of the home (inbox, archive, database, letters, settings, Airflow's files and passwords) never is.
_AGS = r"[0-9]{8}"
_ROUND = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_SERVED: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), view) for p, view in (
    (rf"exports/{_ROUND}/round_report\.html", access.ROUND_REPORTS),
    (rf"exports/{_ROUND}/(assignments\.csv|round\.json|audit(/.*)?)", access.AUDIT_EXPORTS),
    (r"data_docs(/.*)?", access.DATA_DOCS),
    (rf"outbox/{_AGS}/{_ROUND}/packet_[^/]+\.(pdf|html)", access.PACKETS),
))
_NOT_RECORDED = re.compile(r"data_docs/static/.*")  # the Data Docs' style sheet holds nothing about anyone
_ROUND_OF = re.compile(rf"(exports|outbox/{_AGS})/({_ROUND})(/|$)")

# Served pages may frame in Airflow's UI, run no script (none of the reports has any: a page planted in a served
# folder must not act with the reader's login), send no form and load nothing from elsewhere; a page about people is
# never cached.
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                       "script-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
_INLINE = frozenset({"text/html", "application/pdf", "text/css"})  # shown in the browser; anything else downloads


def view_of(relative: str) -> str | None:
    """The view (an access resource) a path under REMATCH_HOME belongs to; None for a path that is never served."""
    return next((view for pattern, view in _SERVED if pattern.fullmatch(relative)), None)


def resolve(home: Path, relative: str) -> Path | None:
    """The served file or folder a request names, or None: a path outside the served ones, a parent step, a hidden
    name, a link leading out of the home or anything that does not exist all read as "not here"."""
    parts = PurePosixPath(relative).parts
    if (not relative or "\\" in relative or "\x00" in relative or relative.startswith("/")
            or any(p in ("", ".", "..") or p.startswith(".") for p in parts)):
        return None
    if view_of("/".join(parts)) is None:
        return None
    # No link on the way, and no file with a second name: either could make a packet read as a Data Docs page.
    try:
        target = home.resolve()
        for part in parts:
            target = target / part
            if target.is_symlink():
                return None
        found = target.lstat()
    except (OSError, ValueError):  # missing, a name too long for the file system, ...
        return None
    return target if stat.S_ISDIR(found.st_mode) or (stat.S_ISREG(found.st_mode) and found.st_nlink == 1) else None


@dataclass(frozen=True)
class Gate:
    """Who asks (a FastAPI dependency that answers 401 to an anonymous request) and whether they may read a view."""

    who: Callable[..., Awaitable[Any]]
    may: Callable[[Any, str], bool]


async def _airflow_user(request: Request) -> Any:
    """The person Airflow's login says is asking (its UI's session cookie or a bearer token); 401 for nobody. Airflow's
    API modules load on the first request, not when every Airflow process imports the plugin."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials
    from fastapi.security.utils import get_authorization_scheme_param

    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None
    return await get_user(request, None, bearer)


def _airflow_may(user: Any, view: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    return bool(get_auth_manager().is_authorized_custom_view(method="GET", resource_name=view, user=user))


AIRFLOW_GATE = Gate(who=_airflow_user, may=_airflow_may)  # Airflow's own login and its auth manager's roles


def _name(user: Any) -> str:
    return str(user.get_name() if hasattr(user, "get_name") else user)[:64]


_pages = Environment(loader=PackageLoader("rematch_pipeline", "reports/templates"), autoescape=select_autoescape())


def create_app(settings: Settings, gate: Gate | None = None) -> FastAPI:
    """The reports app, mounted by the Airflow plugin under /rematch; `gate` defaults to Airflow's login."""
    gate = gate or AIRFLOW_GATE
    app = FastAPI(title="Re:Match reports", docs_url=None, redoc_url=None, openapi_url=None)
    home = settings.home
    # Every page: the person asking, or 401. (No postponed annotations in this module: FastAPI reads this one.)
    Who = Annotated[Any, Depends(gate.who)]

    @app.middleware("http")
    async def only_from_here(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Another website may embed a report address (an image, a fetch) that the reader's browser then sends with
        # the reader's login: each such load would record "report_opened" in the audit log for that person. Browsers
        # say where a request comes from; a cross-site load that is not the reader following a link is refused and
        # records nothing. Following a shared link (navigation) still works.
        if (request.headers.get("sec-fetch-site") == "cross-site"
                and request.headers.get("sec-fetch-mode") != "navigate"):
            return PlainTextResponse("Another website asked for this report page; open it from the reports page "
                                     "instead.", status_code=403, headers=_HEADERS)
        return await call_next(request)

    @app.exception_handler(SchemaNotReady)
    async def not_ready(request: Request, exc: SchemaNotReady) -> Response:
        # Not the exception's text: it may name a path of the server.
        return PlainTextResponse("The project database is not set up yet: an operator runs `rematch db upgrade`.",
                                 status_code=503, headers=_HEADERS)

    def record(user: Any, event: str, view: str, relative: str) -> None:
        from rematch_pipeline.repository import unit_of_work

        require_schema(settings.database_url)  # nothing is shown that could not be recorded
        found = _ROUND_OF.match(relative)
        ags = relative.split("/")[1] if found and relative.startswith("outbox/") else None
        subject = (f"{found.group(2)}/{ags}" if ags else found.group(2)) if found else view
        with unit_of_work(settings) as uow:
            uow.audit(_name(user), event, subject[:128], {"view": view, "path": relative[:500]},
                      at=settings.clock.now())

    def allowed(user: Any, view: str, relative: str) -> None:
        """Refuse (403, recorded) a person whose role does not read this view."""
        if not gate.may(user, view):
            record(user, "report_refused", view, relative)
            raise HTTPException(status_code=403, detail=f"your role does not allow reading {view}")

    def page(request: Request, template: str, user: Any, **context: Any) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/") + "/"  # where Airflow mounted this app
        return HTMLResponse(_pages.get_template(template).render(root=root, user=_name(user), **context),
                            headers=_HEADERS)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: Who) -> HTMLResponse:
        from rematch_pipeline.repository import reading

        require_schema(settings.database_url)
        with reading(settings) as uow:
            rounds = uow.rounds.ids(newest_first=True)
        views = {v: gate.may(user, v) for v in access.REPORT_VIEWS}
        listed = [{"id": r, "report": (home / "exports" / r / "round_report.html").exists()} for r in rounds]
        return page(request, "web_index.html.j2", user, rounds=listed, may=views, A=access,
                    data_docs=(home / "data_docs" / "index.html").exists())

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, user: Who) -> HTMLResponse:
        from rematch_pipeline.quarantine import describe, list_quarantine

        allowed(user, access.QUARANTINE, "quarantine")
        rows = list_quarantine(settings)
        record(user, "report_opened", access.QUARANTINE, "quarantine")
        return page(request, "web_quarantine.html.j2", user, lines=[describe(r) for r in rows])

    @app.get("/rounds/{round_id}/packets", response_class=HTMLResponse)
    def packets(request: Request, round_id: str, user: Who) -> HTMLResponse:
        if not re.fullmatch(_ROUND, round_id):
            raise HTTPException(status_code=404, detail="no such round")
        listing = f"exports/{round_id}/packets"  # recorded under its round
        allowed(user, access.PACKETS, listing)
        files = sorted(p.relative_to(home).as_posix() for p in (home / "outbox").glob(f"*/{round_id}/packet_*")
                       if view_of(p.relative_to(home).as_posix()) == access.PACKETS)
        record(user, "report_opened", access.PACKETS, listing)
        return page(request, "web_packets.html.j2", user, round_id=round_id, files=files)

    @app.get("/rounds/{round_id}/audit.zip")
    def audit_zip(round_id: str, user: Who) -> Response:
        from rematch_pipeline.audit import export_audit

        if not re.fullmatch(_ROUND, round_id):
            raise HTTPException(status_code=404, detail="no such round")
        allowed(user, access.AUDIT_EXPORTS, f"exports/{round_id}/audit")
        # Written to disk and streamed from there, then removed: a large round's export never sits in memory whole.
        tmp = Path(tempfile.mkdtemp(prefix="rematch-audit-"))
        try:
            folder = export_audit(settings, round_id, tmp)
            with zipfile.ZipFile(tmp / "audit.zip", "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(folder.iterdir()):
                    zf.write(f, f"{round_id}/{f.name}")
        except LookupError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise HTTPException(status_code=404, detail="no such round") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        record(user, "report_opened", access.AUDIT_EXPORTS, f"exports/{round_id}/audit.zip")
        return FileResponse(tmp / "audit.zip", media_type="application/zip", filename=f"audit_{round_id}.zip",
                            headers=_HEADERS, background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))

    @app.get("/home/{relative:path}")
    def served(request: Request, relative: str, user: Who) -> Response:
        view = view_of(relative.rstrip("/"))
        if view is None:  # probing for the database, the inbox or a password is kept too
            record(user, "report_refused", "no report", relative)
            raise HTTPException(status_code=404, detail="there is no report at this address")
        # The role first, then whether the file exists: who may not read packets cannot tell which exist.
        allowed(user, view, relative)
        target = resolve(home, relative.rstrip("/"))
        if target is None:
            raise HTTPException(status_code=404, detail="there is no report at this address")
        if target.is_dir() and not relative.endswith("/"):  # the folder's own links are relative to it
            return RedirectResponse(request.url.path + "/", status_code=307)
        if not _NOT_RECORDED.fullmatch(relative):
            record(user, "report_opened", view, relative)
        if target.is_dir():
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if not p.name.startswith("."))
            return page(request, "web_folder.html.j2", user, folder=relative.rstrip("/"), names=names)
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        # FileResponse streams the file and writes its name percent-encoded, so a name cannot add parameters.
        return FileResponse(target, media_type=kind, filename=target.name, headers=_HEADERS,
                            content_disposition_type="inline" if kind in _INLINE else "attachment")

    return app
