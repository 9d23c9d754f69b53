"""Nothing outlives its owner: an application's pytest session killed by a real signal
leaves no embedded Postgres and no temporary home behind for long, and what a session
whose watchdog died too left is removed by the next session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.testing._reaper import PREFIX, WATCHDOG_PID_FILE

# An application's test that holds a throwaway tenant and says where its server is.
HOLDING = """
import os, time
from pathlib import Path

def test_holds_a_tenant(tenantvec, tenantvec_tenant):
    home = tenantvec.settings.home
    pid = (home / "pg" / "data" / "postmaster.pid").read_text().split()[0]
    Path(os.environ["SEEN"]).write_text(f"{home} {pid}")
    time.sleep(120)
"""

FINE = """
def test_a_tenant(tenantvec_tenant):
    pass
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """An application's test folder, and a temporary directory of its own for its runs
    (reachable by the Postgres service user) -- where throwaway homes are looked for."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_hold.py").write_text(HOLDING)
    (tmp_path / "tests" / "test_fine.py").write_text(FINE)
    tmp = Path(tempfile.mkdtemp(prefix="tenantvec-reaper-"))
    tmp.chmod(0o755)
    try:
        yield tmp_path, tmp
    finally:
        for home in tmp.glob(PREFIX + "*"):  # a test that failed: stop what it left
            _stop(home)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


def _env(tmp: Path, seen: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENANTVEC_", "PYTEST_"))}
    env.update(TMPDIR=str(tmp), SEEN=str(seen))
    return env


def _hold(app: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], Path, int]:
    """A pytest session holding a tenant: (its process, the home, the postmaster's pid)."""
    seen = app / "seen.txt"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_hold.py"],
        cwd=app,
        env=_env(tmp, seen),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group, as a CI job's
    )
    deadline = time.monotonic() + 120
    while not seen.exists() or not seen.read_text():
        assert session.poll() is None, "the session ended before it held a tenant"
        assert time.monotonic() < deadline, "the session did not get a tenant"
        time.sleep(0.1)
    home, pid = seen.read_text().split()
    assert _alive(int(pid))
    return session, Path(home), int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (reaped by nobody yet) is dead too.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _gone(home: Path, pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid) and not home.exists():
            return True
        time.sleep(0.2)
    return False


def _stop(home: Path) -> None:
    pidfile = home / "pg" / "data" / "postmaster.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGKILL, True)],
    ids=["SIGTERM-to-pytest", "SIGKILL-to-its-group"],
)
def test_a_killed_session_leaves_no_server_and_no_home(
    app: tuple[Path, Path], sig: signal.Signals, group: bool
) -> None:
    folder, tmp = app
    session, home, postmaster = _hold(folder, tmp)
    if group:
        os.killpg(session.pid, sig)
    else:
        session.send_signal(sig)
    session.wait(timeout=30)
    assert _gone(home, postmaster, within=30), f"{home} or postmaster {postmaster} outlived it"


def test_the_next_session_removes_what_a_dead_one_left(app: tuple[Path, Path]) -> None:
    folder, tmp = app
    session, home, postmaster = _hold(folder, tmp)
    # The watchdog dies first, then the session: nothing of theirs can clean up.
    watchdog = int((home / WATCHDOG_PID_FILE).read_text())
    os.kill(watchdog, signal.SIGKILL)
    os.killpg(session.pid, signal.SIGKILL)
    session.wait(timeout=30)
    time.sleep(1)
    assert _alive(postmaster) and home.exists()  # an orphan, as a dead run leaves it
    nxt = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fine.py"],
        cwd=folder,
        env=_env(tmp, folder / "unused"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    assert _gone(home, postmaster, within=10), "the next session did not reap the orphan"
    assert not list(tmp.glob(PREFIX + "*")), "the next session left its own home"
