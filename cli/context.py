"""What every command shares: settings, output mode, the actor, the async shim."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from controlplane.plane import ControlPlane
from controlplane.settings import Settings

__all__ = ["Cli", "JsonOption", "get_cli"]

T = TypeVar("T")

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print only JSON on stdout (for scripts and CI).")
]


@dataclass
class Cli:
    settings: Settings
    debug: bool = False

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
        return Console(stderr=True, highlight=False)

    def run(self, work: Callable[[ControlPlane], Awaitable[T]]) -> T:
        """Open the control plane, run ``work`` on it, close it: the sync edge."""

        async def main() -> T:
            async with ControlPlane.open(self.settings) as plane:
                return await work(plane)

        return asyncio.run(main())

    def print_json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def get_cli(ctx: typer.Context) -> Cli:
    cli = ctx.find_root().obj
    assert isinstance(cli, Cli)
    return cli
