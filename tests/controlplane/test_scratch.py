"""Scratch directories: removed when their owner ends, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlplane.scratch import Scratch, scratch_dir, sweep

# A process that takes a scratch directory, writes into it and waits to be killed.
_OWNER = """
import sys, time
from pathlib import Path
from controlplane.scratch import Scratch
scratch = Scratch(Path(sys.argv[1]), "restore")
(scratch.path / "tenant.dump").write_bytes(b"x" * 4096)
print(scratch.path, flush=True)
time.sleep(600)
"""


def _owner(root: Path) -> tuple[subprocess.Popen[str], Path]:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    path = Path(owner.stdout.readline().strip())
    owner.stdout.close()
    return owner, path


def test_a_killed_owner_s_directory_is_swept_and_a_live_one_is_kept(tmp_path: Path) -> None:
    owner, killed = _owner(tmp_path)
    with Scratch(tmp_path, "backup") as mine:
        assert sweep(tmp_path) == []  # both held: the other process lives
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        assert killed.is_dir()
        assert sweep(tmp_path) == [killed]
        assert not killed.exists() and mine.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_a_new_scratch_sweeps_what_dead_owners_left(tmp_path: Path) -> None:
    owner, killed = _owner(tmp_path)
    owner.kill()
    owner.wait()
    with Scratch(tmp_path, "restore") as fresh:
        assert [p.name for p in tmp_path.iterdir()] == [fresh.name]
    assert not killed.exists()


def test_a_directory_half_made_is_kept_for_a_moment_then_swept(tmp_path: Path) -> None:
    half = tmp_path / ".new-restore-abc"  # killed between mkdir and rename
    half.mkdir()
    assert sweep(tmp_path) == []
    old = time.time() - 3600
    os.utime(half, (old, old))
    assert sweep(tmp_path) == [half]


async def test_the_async_form_removes_its_directory_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        async with scratch_dir(tmp_path, "api-restore") as path:
            (path / "upload.tvbackup").write_bytes(b"partial upload")
            raise RuntimeError("the client went away")
    assert list(tmp_path.iterdir()) == []
