"""The production topology without Docker: scheduler, dag-processor, api-server and a Celery worker as processes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import psutil
import psycopg
import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url

from rematch_pipeline import access
from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.scenario import generate_scenario
from tests.conftest import TEST_CONTACT

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.celery]

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PG_URL = os.environ.get("REMATCH_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("REMATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
# Not a Monday, so never the date of a weekly scheduled round.
ROUND_DATE = date(2026, 11, 25)
HOUSEHOLDS, MUNICIPALITIES = 30, 8
DAG_IDS = ("rematch_ingest", "rematch_round", "rematch_packets")
# Bounds every wait together, so a hung component fails the test instead of hanging CI.
DEADLINE_S = 480
# A yearly schedule whose only due run the test claims by triggering it: no scheduled run can race the chain.
YEARLY = "0 6 1 1 *"


@dataclass
class Component:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes]


@dataclass
class Topology:
    """The Airflow processes of one test, their shared environment, and everything needed to explain a failure."""

    env: dict[str, str]
    home: Path
    metadata_url: str  # plain psycopg URL of Airflow's metadata database
    deadline: float
    api_url: str  # the api-server, where people log in
    components: list[Component] = field(default_factory=list)

    def start(self, name: str, *args: str) -> None:
        log = self.home / f"{name}.out"
        handle = open(log, "wb")
        # Own session per component, so stopping it reaches the processes it forked (Celery pool, task supervisors).
        proc = subprocess.Popen([AIRFLOW, *args], env=self.env, cwd=self.home, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.components.append(Component(name, proc, log, handle))

    def run(self, *args: str) -> str:
        proc = subprocess.run([AIRFLOW, *args], env=self.env, cwd=self.home, capture_output=True, text=True,
                              timeout=max(30.0, self.remaining()))
        if proc.returncode != 0:
            self.fail(f"`airflow {' '.join(args)}` exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                      f"{proc.stderr[-3000:]}")
        return proc.stdout

    def api(self, method: str, path: str, token: str | None = None, body: dict[str, Any] | None = None
            ) -> tuple[int, bytes]:
        """A person's request to the api-server: its status and body (an error status is an answer, not a failure)."""
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(self.api_url + path, method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def login(self, username: str, password: str) -> str:
        status, body = self.api("POST", "/auth/token", body={"username": username, "password": password})
        if status not in (200, 201):
            self.fail(f"{username} could not log in: {status} {body[:300]!r}")
        return str(json.loads(body)["access_token"])

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.metadata_url, connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def wait(self, what: str, check: Any, interval: float = 1.0) -> Any:
        """Poll `check` until it returns something truthy; fail early when a component died or a task failed."""
        while True:
            for c in self.components:
                if c.proc.poll() is not None:
                    self.fail(f"{c.name} exited with {c.proc.returncode} while waiting for {what}")
            failed = self.query("SELECT dag_id, task_id, map_index, state FROM task_instance "
                                "WHERE state IN ('failed', 'up_for_retry', 'upstream_failed')")
            if failed:
                self.fail(f"task(s) failed while waiting for {what}: {failed}")
            result = check()
            if result:
                return result
            if self.remaining() <= 0:
                self.fail(f"timed out after {DEADLINE_S} s waiting for {what}")
            time.sleep(interval)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.diagnostics()}", pytrace=False)

    def diagnostics(self) -> str:
        parts = []
        for c in self.components:
            c.handle.flush()
            parts.append(f"----- {c.name} (last lines of {c.log.name}) -----\n{_tail(c.log, 4000)}")
        try:
            runs = self.query("SELECT dag_id, run_id, state FROM dag_run ORDER BY id")
            tis = self.query("SELECT dag_id, task_id, map_index, state, try_number, hostname, queue "
                             "FROM task_instance ORDER BY dag_id, task_id, map_index")
            parts.append(f"----- dag runs -----\n{runs}\n----- task instances -----\n" + "\n".join(map(str, tis)))
        except psycopg.Error as exc:
            parts.append(f"----- metadata database unreadable: {exc} -----")
        # Logs of tasks that raised come last, nearest the end of the message, where CI output is read first.
        task_logs = sorted((self.home / "logs").glob("dag_id=*/**/*.log"),
                           key=lambda p: ('"level":"error"' in _tail(p, 100_000), p.stat().st_mtime))
        for log in task_logs[-8:]:
            # A failed task's error may be far above its log's last lines (the post-execute events follow it).
            errors = [line for line in _tail(log, 1_000_000).splitlines() if '"level":"error"' in line]
            parts.append(f"----- task log {log.relative_to(self.home / 'logs')} -----\n{_tail(log, 3000)}"
                         + ("\n----- its errors -----\n" + "\n".join(errors)[-4000:] if errors else ""))
        return "\n".join(parts)

    def stop(self) -> None:
        for c in self.components:
            _terminate(c.proc)
            c.handle.close()


def _tail(path: Path, chars: int) -> str:
    try:
        return path.read_bytes()[-chars:].decode("utf-8", "replace")
    except OSError as exc:
        return f"(unreadable: {exc})"


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the component's process group and every descendant (some detach into their own group), then kill."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        for p in family:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(family, timeout=20)
        if not alive and proc.poll() is not None:
            break
    proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server() -> URL:
    """The PostgreSQL server of REMATCH_TEST_DATABASE_URL, or a skip saying why the test cannot run here."""
    if not PG_URL:
        pytest.skip("REMATCH_TEST_DATABASE_URL is not set: the Celery topology needs a PostgreSQL server (and Redis)")
    server = make_url(PG_URL).set(drivername="postgresql", database="postgres")
    try:
        with psycopg.connect(server.render_as_string(hide_password=False), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL of REMATCH_TEST_DATABASE_URL is not reachable: {exc}")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} (REMATCH_TEST_REDIS_URL) is not reachable: {exc}")
    return server


@pytest.fixture
def databases() -> Iterator[tuple[URL, URL]]:
    """Fresh metadata and project databases on the test server (separate, as in production), dropped afterwards."""
    server = _server()
    suffix = uuid.uuid4().hex[:12]
    names = (f"rematch_airflow_{suffix}", f"rematch_project_{suffix}")
    admin = server.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield server.set(database=names[0]), server.set(database=names[1])
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                # FORCE: a component killed mid-transaction may still hold a connection for a moment.
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@pytest.fixture
def topology(databases: tuple[URL, URL], tmp_path: Path) -> Iterator[Topology]:
    metadata_db, project_db = databases
    home = tmp_path / "airflow"
    home.mkdir()
    # Each run has its own Celery queue: a concurrent run on the same Redis database can never take our tasks.
    queue = f"rematch-test-{uuid.uuid4().hex[:12]}"
    api_port = _free_port()
    airflow_db = metadata_db.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    # A developer's own Airflow and Re:Match settings (another inbox, database or schedule) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REMATCH_"))}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        # Logins with the project's roles, as the compose file sets them up.
        "AIRFLOW__CORE__AUTH_MANAGER": access.AUTH_MANAGER,
        **{a.username_var: a.role.lower() for a in access.ACCOUNTS},
        **{a.password_var: secrets.token_urlsafe(16) for a in access.ACCOUNTS},
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        # Every component signs or checks the workers' tokens with the same secret, as in docker-compose.yml.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        # Airflow would derive an asyncpg URL, a driver the lock does not hold; psycopg 3 does async itself.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": airflow_db.replace("+psycopg:", "+psycopg_async:", 1),
        "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        # Quick parsing and scheduling keep the test short; production keeps the defaults.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "REMATCH_HOME": str(tmp_path / "rematch"),
        "REMATCH_DATABASE_URL": project_db.render_as_string(hide_password=False),
        "REMATCH_INGEST_SCHEDULE": YEARLY,
        "REMATCH_ROUND_SCHEDULE": YEARLY,
        "REMATCH_COORDINATION_CONTACT": TEST_CONTACT,
    })
    topo = Topology(env, home, metadata_db.render_as_string(hide_password=False),
                    time.monotonic() + DEADLINE_S, f"http://127.0.0.1:{api_port}")
    try:
        topo.run("db", "migrate")
        # Then, as the compose file's airflow-init does, the project's schema: tasks never migrate.
        for step in (["db", "upgrade"], ["access", "sync", "--require-passwords"]):
            subprocess.run([str(Path(sys.executable).with_name("rematch")), *step], env=env, cwd=home,
                           check=True, capture_output=True, timeout=120)
        topo.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1")
        topo.start("scheduler", "scheduler")
        topo.start("dag-processor", "dag-processor")
        topo.start("celery-worker", "celery", "worker", "--queues", queue, "--concurrency", "2",
                   "--celery-hostname", f"{queue}@%h", "--without-gossip", "--without-mingle")
        topo.wait("the api-server", lambda: _healthy(api_port))
        yield topo
    finally:
        topo.stop()
        # Only this run's queue: other runs may share the Redis database.
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"*{queue}*"))
        if keys:
            client.delete(*keys)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as resp:
            health = json.load(resp)
    except OSError:
        return False
    return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler",
                                                                             "dag_processor"))


def _trigger_due_run(topo: Topology, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    """Trigger `dag_id` at its next scheduled logical date, then unpause it: the scheduler sees that run exists
    and creates no scheduled run of its own, so only the runs the test triggers ever run."""
    (next_run,) = topo.query("SELECT next_dagrun FROM dag WHERE dag_id = %s", dag_id)[0]
    run_id = f"celery_test__{dag_id}"
    args = ["dags", "trigger", dag_id, "--run-id", run_id, "--logical-date", next_run.isoformat()]
    topo.run(*args, *(["--conf", json.dumps(conf)] if conf else []))
    topo.run("dags", "unpause", dag_id)
    return run_id


def _succeeded(topo: Topology, dag_id: str, run_id: str | None = None) -> bool:
    """Whether the run (the only run of `dag_id` when no id is given) succeeded; fails the test if it failed."""
    runs = topo.query("SELECT run_id, state FROM dag_run WHERE dag_id = %s AND (%s::text IS NULL OR run_id = %s)",
                      dag_id, run_id, run_id)
    if len(runs) > 1:
        topo.fail(f"expected one run of {dag_id}, found {runs}")
    if runs and runs[0][1] == "failed":
        topo.fail(f"{dag_id} run {runs[0][0]} failed")
    return bool(runs) and runs[0][1] == "success"


def test_ingest_round_packets_chain_succeeds_on_celery_workers(topology: Topology) -> None:
    # The workers run on the system clock: the round's date travels as the DAG param production uses; this
    # process only generates the inputs and reads the results.
    settings = Settings(home=Path(topology.env["REMATCH_HOME"]), database_url=topology.env["REMATCH_DATABASE_URL"],
                        clock=ManualClock(ROUND_DATE))
    settings.ensure_dirs()
    generate_scenario(settings.inbox, households=HOUSEHOLDS, municipalities=MUNICIPALITIES, seed=11,
                      round_date=ROUND_DATE)

    def parsed() -> bool:
        # Cron-scheduled DAGs also need their next due run computed; the packets DAG waits for an asset instead.
        rows = topology.query("SELECT dag_id FROM dag WHERE NOT is_stale "
                              "AND (next_dagrun IS NOT NULL OR dag_id = 'rematch_packets')")
        errors = topology.query("SELECT filename, stacktrace FROM import_error")
        if errors:
            topology.fail(f"DAG import errors: {errors}")
        return {r[0] for r in rows} >= set(DAG_IDS)

    topology.wait("the DAGs to be parsed", parsed)
    # The packets DAG runs on the round's asset event, never by itself.
    topology.run("dags", "unpause", "rematch_packets")

    ingest_run = _trigger_due_run(topology, "rematch_ingest")
    topology.wait("the ingest run", lambda: _succeeded(topology, "rematch_ingest", ingest_run))
    # The round is started as the data team starts it: logged in, through the REST API; an auditor may not.
    auditor, team = (topology.login(topology.env[f"AIRFLOW_{who}_USERNAME"], topology.env[f"AIRFLOW_{who}_PASSWORD"])
                     for who in ("AUDITOR", "DATA_TEAM"))
    (next_run,) = topology.query("SELECT next_dagrun FROM dag WHERE dag_id = 'rematch_round'")[0]
    trigger = {"dag_run_id": "celery_test__rematch_round", "logical_date": next_run.isoformat(),
               "conf": {"round_date": ROUND_DATE.isoformat()}}
    assert topology.api("POST", "/api/v2/dags/rematch_round/dagRuns", None, trigger)[0] == 401
    assert topology.api("POST", "/api/v2/dags/rematch_round/dagRuns", auditor, trigger)[0] == 403
    status, body = topology.api("POST", "/api/v2/dags/rematch_round/dagRuns", team, trigger)
    assert status == 200, body[:500]
    topology.run("dags", "unpause", "rematch_round")
    round_run = trigger["dag_run_id"]
    topology.wait("the round run", lambda: _succeeded(topology, "rematch_round", round_run))
    topology.wait("the packets run started by the round's asset event",
                  lambda: _succeeded(topology, "rematch_packets"))

    # Every task ran through Celery: queued on this run's queue, which only the test's worker consumes.
    tis = topology.query("SELECT dag_id, task_id, map_index, state, queue FROM task_instance")
    assert {ti[0] for ti in tis} == set(DAG_IDS)
    assert all(ti[4] == topology.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] for ti in tis), tis
    assert {ti[3] for ti in tis} <= {"success", "skipped"}, tis
    # Celery's own record of each task it ran (its state may still read STARTED a moment after Airflow's).
    celery_results = dict(topology.query("SELECT status, count(*) FROM celery_taskmeta GROUP BY status"))
    assert "FAILURE" not in celery_results, celery_results
    assert sum(celery_results.values()) >= sum(ti[3] == "success" for ti in tis), celery_results

    engine = get_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.households)).scalar() == HOUSEHOLDS
            rnd = conn.execute(select(t.rounds)).one()
            placed = conn.execute(select(t.assignments.c.ags, t.assignments.c.case_id)).all()
            offered = conn.execute(select(t.match_offers.c.case_id, t.match_offers.c.status)).all()
            packets = conn.execute(select(t.packets.c.ags, t.packets.c.pdf_path)).all()
            n_validations = conn.execute(select(func.count()).select_from(t.validation_runs)).scalar()
            letters = conn.execute(select(func.count()).select_from(t.letters)).scalar()
            delivered = conn.execute(select(func.count()).select_from(t.deliveries)
                                     .where(t.deliveries.c.status == "delivered")).scalar()
    finally:
        engine.dispose()
        get_engine.cache_clear()
    assert rnd.round_id == f"R-{ROUND_DATE.isoformat()}" and rnd.status == "offered"
    assert placed and sorted(offered) == sorted((a.case_id, "pending") for a in placed)
    # One packet per receiving municipality, rendered by the mapped tasks on the worker.
    assert sorted(p.ags for p in packets) == sorted({a.ags for a in placed})
    assert all((settings.home / p.pdf_path).is_file() for p in packets)  # stored relative to the home
    assert (settings.exports / rnd.round_id / "assignments.csv").is_file()
    assert n_validations == 3 and list(settings.data_docs.rglob("*.html"))
    # Letters for every offered household, and every packet and letter delivered once (outbox: no SMTP here).
    assert letters == len(placed) and delivered == len(packets) + len(placed)
    assert (settings.exports / rnd.round_id / "round_report.html").is_file()

    # The reports inside Airflow, on this topology's api-server: an auditor reads the round report and the Data
    # Docs, not a packet; the data team reads the packet; a path out of the reports is refused for everyone.
    report = f"/rematch/home/exports/{rnd.round_id}/round_report.html"
    packet = f"/rematch/home/{packets[0].pdf_path}"
    assert topology.api("GET", report)[0] == 401
    assert topology.api("GET", report, auditor)[0] == 200
    assert topology.api("GET", "/rematch/home/data_docs/index.html", auditor)[0] == 200
    assert topology.api("GET", packet, auditor)[0] == 403
    status, body = topology.api("GET", packet, team)
    assert status == 200 and body.startswith(b"%PDF")
    assert topology.api("GET", "/rematch/home/data_docs/%2e%2e/%2e%2e/airflow/airflow.cfg", team)[0] == 404
