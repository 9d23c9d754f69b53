"""The library's public surface: what a Python user imports from ``controlplane``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import controlplane
from controlplane import errors


def test_exports_are_sorted_and_importable() -> None:
    assert controlplane.__all__ == sorted(controlplane.__all__)
    for name in controlplane.__all__:
        assert getattr(controlplane, name) is not None


def test_the_lazy_map_and_the_type_checkers_imports_name_the_same_places() -> None:
    tree = ast.parse(Path(controlplane.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    imported = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == controlplane._EXPORTS
    assert sorted(imported) == controlplane.__all__


def test_importing_a_leaf_does_not_load_the_library() -> None:
    # What keeps 'tenantctl --help' fast: the package's names load on first use.
    heavy = ("controlplane", "sqlalchemy", "litestar", "psycopg")
    code = f"import sys, controlplane.errors; print(sorted(m for m in sys.modules if m.startswith({heavy})))"  # noqa: E501
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['controlplane', 'controlplane.errors']"


def test_every_error_is_exported_and_in_the_tree() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.TenantvecError)
        assert name in controlplane.__all__


def test_importing_opens_nothing(tmp_path: Path) -> None:
    # Importing must not create directories, start servers or read settings.
    home = tmp_path / "never-created"
    result = subprocess.run(
        [sys.executable, "-c", "import controlplane, tenantctl.main, tenantvec_schema"],
        capture_output=True,
        text=True,
        env={"TENANTVEC_HOME": str(home), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert not home.exists()
