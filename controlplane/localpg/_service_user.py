"""The operating-system user the embedded Postgres runs as.

Postgres refuses to run as root. When tenantvec itself runs as root, the server runs as
a dedicated unprivileged system user (created if missing) that owns only the server's
directory; otherwise it runs as the current user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controlplane.errors import EmbeddedServerError

__all__ = ["ServiceUser"]

_OTHERS_EXEC = stat.S_IXOTH


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    @classmethod
    def resolve(cls, wanted: str) -> ServiceUser:
        """The current user, or -- as root -- ``wanted``, created if it does not exist."""
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)
        try:
            entry = pwd.getpwnam(wanted)
        except KeyError:
            entry = _create_system_user(wanted)
        if entry.pw_uid == 0:
            raise EmbeddedServerError(
                f"TENANTVEC_PG_OS_USER={wanted!r} is a root account; Postgres needs an "
                "unprivileged user"
            )
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    def run(
        self,
        args: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        new_session: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a program as this user and capture its output (never raises on exit code).

        ``new_session``: in a session of its own, so what it starts in the background (a
        postmaster) is out of reach of signals sent to our process group.
        """
        # Switch user only when we are not already it (as root, for the service user).
        switch = not self.is_current
        child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        child_env.update(env or {})
        try:
            return subprocess.run(
                [str(a) for a in args],
                cwd=cwd,
                env=child_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                user=self.uid if switch else None,
                group=self.gid if switch else None,
                extra_groups=[] if switch else None,
                start_new_session=new_session,
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedServerError(
                f"{Path(str(args[0])).name} did not finish within {timeout:g}s"
            ) from None
        except OSError as exc:
            raise EmbeddedServerError(f"cannot run {args[0]}: {exc.strerror}") from None

    def give(self, path: Path, mode: int) -> None:
        """Make ``path`` belong to this user with ``mode`` (a no-op owner change if current)."""
        if not self.is_current:
            os.chown(path, self.uid, self.gid)
        path.chmod(mode)

    def check_can_reach(self, path: Path) -> None:
        """Refuse early, with a way out, if this user cannot traverse to ``path``.

        We do not loosen the permissions of directories we do not own (a user's home,
        for instance); we say which one is in the way.
        """
        if self.is_current:
            return
        for parent in reversed(path.resolve().parents):
            mode = parent.stat().st_mode
            if not mode & _OTHERS_EXEC and parent.stat().st_uid != self.uid:
                raise EmbeddedServerError(
                    f"the Postgres service user {self.name!r} cannot reach {path}: "
                    f"{parent} is not searchable by other users (mode "
                    f"{stat.S_IMODE(mode):o}). Set TENANTVEC_HOME to a directory under a "
                    "searchable path, e.g. /var/lib/tenantvec"
                )


def _create_system_user(name: str) -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    if not Path(useradd).exists():
        raise EmbeddedServerError(
            f"running as root needs an unprivileged user {name!r} for Postgres, and "
            "'useradd' is not available to create it; create the user yourself or set "
            "TENANTVEC_PG_OS_USER to an existing one"
        )
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # A concurrent process may have created it first; that is fine.
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedServerError(
            f"could not create system user {name!r}: {result.stderr.strip()}"
        ) from None
