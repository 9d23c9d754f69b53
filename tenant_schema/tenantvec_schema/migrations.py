"""The versioned migration files of a tenant database, and how each renders for a tenant."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from psycopg import sql

from controlplane.errors import MigrationError
from tenantvec_schema.spec import IndexKind, Precision, SchemaSpec

__all__ = [
    "Migration",
    "MigrationSet",
    "indexed_embedding",
    "render_migration",
    "vector_index_sql",
]

_FILE_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")  # whole name


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    template: str

    @property
    def checksum(self) -> str:
        """sha256 of the file as written: an applied migration must never change."""
        return hashlib.sha256(self.template.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationSet:
    migrations: tuple[Migration, ...]

    @classmethod
    def bundled(cls) -> MigrationSet:
        """The migrations shipped in ``tenant_schema/tenantvec_schema/migrations/``."""
        return cls.from_package("tenantvec_schema")

    @classmethod
    def from_package(cls, package: str) -> MigrationSet:
        """The migrations in a package's ``migrations/`` folder (the catalog's own, too)."""
        folder = resources.files(package) / "migrations"
        return cls._from_files((entry.name, entry.read_text()) for entry in folder.iterdir())

    @classmethod
    def from_directory(cls, path: Path) -> MigrationSet:
        return cls._from_files((p.name, p.read_text()) for p in path.iterdir())

    @classmethod
    def _from_files(cls, files: Iterable[tuple[str, str]]) -> MigrationSet:
        found: list[Migration] = []
        for name, text in files:
            match = _FILE_RE.fullmatch(name)
            if match:
                found.append(Migration(int(match.group(1)), match.group(2), text))
        found.sort(key=lambda m: m.version)
        versions = [m.version for m in found]
        if versions != list(range(1, len(found) + 1)):
            raise MigrationError(f"migration versions must run 1, 2, 3... without gaps: {versions}")
        return cls(tuple(found))

    @property
    def latest(self) -> int:
        return self.migrations[-1].version if self.migrations else 0

    def by_version(self) -> dict[int, Migration]:
        return {m.version: m for m in self.migrations}


def render_migration(migration: Migration, spec: SchemaSpec | None) -> sql.SQL | sql.Composed:
    """Fill a migration's placeholders with the tenant's settings, as composed SQL; with
    no spec (the catalog's migrations), the file as written."""
    if spec is None:
        return sql.SQL(migration.template)  # a file of ours, not input
    try:
        return sql.SQL(migration.template).format(
            dims=sql.Literal(spec.dims),
            text_config=sql.Literal(spec.text_config),
            vector_index=vector_index_sql(spec),
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise MigrationError(
            f"migration {migration.version} ({migration.name}) has an unknown placeholder: {exc}"
        ) from None


def vector_index_sql(
    spec: SchemaSpec, *, name: str = "chunks_embedding_idx", concurrently: bool = False
) -> sql.SQL | sql.Composed:
    index = spec.index
    if index.kind is IndexKind.NONE:
        return sql.SQL("-- no vector index (exact search)")
    params = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v))
        for k, v in index.build_params().items()
    )
    return sql.SQL(
        "CREATE INDEX {concurrently}{name} ON chunks USING {method} ({key} {opclass}) "
        "WITH ({params});"
    ).format(
        concurrently=sql.SQL("CONCURRENTLY " if concurrently else ""),
        name=sql.Identifier(name),
        method=sql.SQL(index.kind.value),
        key=indexed_embedding(spec),
        opclass=sql.Identifier(spec.metric.opclass(index.precision or Precision.FULL)),
        params=params,
    )


def indexed_embedding(spec: SchemaSpec, column: str = "embedding") -> sql.Composable:
    """What the vector index of ``spec`` holds, as an expression over ``column``: the
    column itself, or its half-precision form. A search's ORDER BY must spell it the
    same way for the index to apply."""
    if not spec.index.half:
        return sql.Identifier(column)
    return sql.SQL("({}::halfvec({}))").format(sql.Identifier(column), sql.Literal(spec.dims))
