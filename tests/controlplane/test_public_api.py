"""The library's public surface: what a Python user imports from ``controlplane``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import controlplane
from controlplane import errors


def test_exports_are_sorted_and_importable() -> None:
    assert controlplane.__all__ == sorted(controlplane.__all__)
    for name in controlplane.__all__:
        assert getattr(controlplane, name) is not None


def test_every_error_is_exported_and_in_the_tree() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.TenantvecError)
        assert name in controlplane.__all__


def test_importing_opens_nothing(tmp_path: Path) -> None:
    # Importing must not create directories, start servers or read settings.
    home = tmp_path / "never-created"
    result = subprocess.run(
        [sys.executable, "-c", "import controlplane, cli.main, tenant_schema"],
        capture_output=True,
        text=True,
        env={"TENANTVEC_HOME": str(home), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert not home.exists()
