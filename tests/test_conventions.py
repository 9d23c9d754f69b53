"""Rules of the code base that no linter knows, checked on the source itself."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(*folders: str) -> Iterator[tuple[Path, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def test_loggers_are_named_after_their_module() -> None:
    """``logging.getLogger(__name__)``: a record says which module wrote it, and the names
    follow the packages as they move (a name written by hand outlives its package)."""
    named_by_hand = []
    for path, tree in _modules("controlplane", "cli"):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith(("tenantvec", "controlplane"))
            ):
                named_by_hand.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert named_by_hand == []


def test_tests_share_helpers_through_helper_modules_not_other_tests() -> None:
    """A test module is run, not imported: what several share lives in a fixture or a
    helpers module (tests/fixtures, a non-test module beside them)."""
    imports = []
    for path, tree in _modules("tests"):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.rsplit(".", 1)[-1].startswith("test_")
            ):
                imports.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
    assert imports == []


def test_records_and_reports_show_themselves_through_one_typed_view() -> None:
    """What an operation answers is a view of model/views.py, serialised once for the
    API and ``tenantctl --json`` alike: no hand-written dict shapes beside it."""
    hand_written = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _modules("controlplane", "cli")
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "public_dict"
    ]
    assert hand_written == []


_MAPPING_METHODS = ("get", "items", "keys", "values", "pop")


def _placement_key_uses(tree: ast.Module) -> list[int]:
    """Lines that index a ``.placement``, call a mapping method on it or unpack it into
    a new one."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None and isinstance(value, ast.Attribute) and value.attr == "placement":
                    lines.append(node.lineno)
        mapping_use = isinstance(node, ast.Subscript) or (
            isinstance(node, ast.Attribute)
            and node.attr in ("get", "items", "keys", "values", "pop")
        )
        target = getattr(node, "value", None) if mapping_use else None
        if isinstance(target, ast.Attribute) and target.attr == "placement":
            lines.append(node.lineno)
    return lines


def test_nothing_but_the_model_reads_a_placements_keys() -> None:
    """A placement is typed end to end (model/placement.py): each backend reads and
    writes its own record type (``PostgresPlacement.of``, ``checkpoint.record(...)``),
    the layers above read ``Tenant.where`` and ``TenantCopy`` and write through the
    model's writers (``with_limits``, ``with_erasure``) -- nobody by its keys."""
    readers = set()
    for path, tree in _modules("controlplane", "cli"):
        relative = str(path.relative_to(ROOT))
        if relative == "controlplane/model/placement.py":
            continue
        if _placement_key_uses(tree):
            readers.add(relative)
    assert readers == set()


# Modules imported only inside their package that are public all the same: what users
# import by name (the API's app factory, the framework integrations, the test harness)
# and each backend's main module.
_PUBLIC_INSIDE = {
    "controlplane.api.app",
    "controlplane.integrations.langchain",
    "controlplane.integrations.llamaindex",
    "controlplane.testing.harness",
    "controlplane.backends.docker.backend",
    "controlplane.backends.instance.backend",
    "controlplane.backends.neon.backend",
    "controlplane.backends.postgres.backend",
}


def test_a_module_used_only_inside_its_package_is_private() -> None:
    """``_name.py``: not for import from outside its package (docs/architecture.md, "The
    public surface"). A module the library imports only from its own package, and that
    is not meant for users, carries the underscore; one that is, loses it."""
    importers: dict[str, set[Path]] = {}
    for path, tree in _modules("controlplane", "cli", "bench"):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                importers.setdefault(name, set()).add(path)
    package_private = []
    for path, _ in _modules("controlplane"):
        if path.name.startswith("_") or path.parent == ROOT / "controlplane":
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        users = importers.get(name, set())
        if name in _PUBLIC_INSIDE or not users:
            continue
        if all(user.parent == path.parent for user in users):
            package_private.append(name)
    assert package_private == []
