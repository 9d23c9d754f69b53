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


def test_each_name_is_declared_once_in_the_type_checkers_imports() -> None:
    """The TYPE_CHECKING imports are the one list: ``__all__`` and the lazy loader are
    read from them, and no second list (a map, a literal ``__all__``) is written."""
    tree = ast.parse(Path(controlplane.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    imported = [
        alias.name
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert len(imported) == len(set(imported))
    assert controlplane.__all__ == sorted(imported)
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert not assigned & {"__all__", "_EXPORTS"}
    star: dict[str, object] = {}
    exec("from controlplane import *", star)  # noqa: S102 -- what a star-import brings
    assert set(star) - {"__builtins__"} == set(imported)


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


# Functions the CLI and the API call from the services that are not operations of their
# own: they check a request before its operation starts, find work, read files or
# present. Each serves an exported operation.
EDGE_HELPERS = {
    "admin_token_path",  # where `tenantctl serve` finds the admin token
    "check_destination",  # move_tenant's target, checked before the spinner starts
    "check_drain",  # drain_server's arguments, likewise
    "chunk_count",  # a progress bar's total
    "expired_tenants",  # what collect_expired will delete (gc's progress bar)
    "find_files",  # ingest's files
    "load_admin_token",
    "read_file",
    "search_mode",  # `tenantctl search` flags -> SearchRequest.mode
    "server_loads",  # `servers list`'s columns
    "tenants_to_drain",  # drain_server's progress bar
    "wants_bulk",  # whether `tenantctl ingest` takes the bulk path
}
_SERVICES = (
    "controlplane.lifecycle",
    "controlplane.retrieval",
    "controlplane.keys",
    "controlplane.backends.servers",
)


def _functions_the_edges_call() -> set[str]:
    root = Path(controlplane.__file__).resolve().parents[1]
    called = set()
    for folder in (root / "cli" / "tenantctl", root / "controlplane" / "api"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_SERVICES):
                    called |= {a.name for a in node.names if a.name[0].islower()}
    return called


def test_the_package_exports_every_operation_the_cli_and_the_api_perform_and_no_more() -> None:
    """The rule of docs/architecture.md, "The public surface": an application or an
    operator's script can do in Python whatever ``tenantctl`` and the API do, by the
    same functions -- and nothing the edges do not use is offered as if it were."""
    exported = {name for name in controlplane.__all__ if name[0].islower()}
    called = _functions_the_edges_call()
    assert exported - called == set(), "exported, but no operation of the CLI or the API"
    assert called - exported == EDGE_HELPERS, "an operation the edges perform is not exported"
