"""What every command shares: settings, output mode, the actor, the async shim."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.plane import ControlPlane


__all__ = ["Cli", "JsonOption", "get_cli", "json_option"]

T = TypeVar("T")

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print only JSON on stdout (for scripts and CI).")
]


@dataclass
class Cli:
    settings: Settings
    debug: bool = False
    # What the command reads besides its settings (TENANTVEC_API_KEY): os.environ, or
    # the mapping an in-process caller handed to tenantctl.main.main.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @property
    def actor(self) -> str:
        """Who an operation row names: the operating-system user on this host."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return f"cli:{user}@{socket.gethostname()}"

    @property
    def out(self) -> Console:
        # Piped output keeps whole rows (rich would wrap at 80 columns) for grep and awk.
        width = None if sys.stdout.isatty() else 250
        return Console(highlight=False, width=width)

    @property
    def err(self) -> Console:
        # Rich's own switch (FORCE_COLOR: draw as on a terminal), read from this
        # command's environment -- which an in-process caller hands over.
        forced = True if self.environ.get("FORCE_COLOR") else None
        return Console(stderr=True, highlight=False, force_terminal=forced)

    def run(self, work: Callable[[ControlPlane], Awaitable[T]]) -> T:
        """Open the control plane, run ``work`` on it, close it: the sync edge."""
        from controlplane.plane import ControlPlane  # the library loads when a command runs

        async def main() -> T:
            async with ControlPlane.open(self.settings) as plane:
                return await work(plane)

        return asyncio.run(main())

    def print_json(self, data: Any) -> None:
        """``data`` as JSON on stdout: a view (model/views.py) as the API answers it."""
        import msgspec

        sys.stdout.write(json.dumps(msgspec.to_builtins(data), indent=2, default=str) + "\n")

    def spinner(self, doing: str, *, quiet: bool) -> contextlib.AbstractContextManager[Any]:
        """A spinner on stderr while one long step runs (none with --json)."""
        return contextlib.nullcontext() if quiet else self.err.status(doing, spinner="dots")


def get_cli(ctx: typer.Context) -> Cli:
    cli = ctx.find_root().obj
    assert isinstance(cli, Cli)
    return cli


def json_option(option: str, text: str) -> Any:
    """The JSON an option was given (--filter, --vector): finite numbers only."""
    from controlplane.errors import InvalidRequest

    def refuse(constant: str) -> Any:
        raise InvalidRequest(f"{option} contains {constant}; values must be finite numbers")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{option} is not valid JSON: {exc.msg}") from None
    except RecursionError:  # the parser's own limit, far past what any check allows
        raise InvalidRequest(f"{option} is nested too deeply") from None
