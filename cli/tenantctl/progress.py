"""The progress bar every long command shows on stderr -- on a terminal only: none with
--json, none in a log or a pipe (where it would leave a stray line beside the command's
one-line error)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from tenantctl.context import Cli

__all__ = ["RateColumn", "progress_bar", "tenants_bar"]


class RateColumn(ProgressColumn):
    """``task.fields[field]`` per second of the task so far."""

    def __init__(self, field: str, unit: str) -> None:
        super().__init__()
        self.field, self.unit = field, unit

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0
        rate = task.fields.get(self.field, 0) / elapsed if elapsed > 0 else 0
        return Text(f"{rate:,.0f} {self.unit}/s", style="progress.data.speed")


def progress_bar(
    cli: Cli, doing: str, unit: str, *extra: ProgressColumn, quiet: bool = False
) -> Progress:
    """``doing [bar] n/total unit <extra columns> elapsed``, left on screen when done."""
    return Progress(
        TextColumn(doing),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        *extra,
        TimeElapsedColumn(),
        console=cli.err,
        disable=quiet or not cli.err.is_terminal,
        transient=False,
    )


@contextlib.contextmanager
def tenants_bar(
    cli: Cli, doing: str, total: int, *, quiet: bool = False
) -> Iterator[Callable[[bool], None]]:
    """A bar over ``total`` tenants that counts failures; yields ``advance(ok)``, to call
    once per tenant as its result comes (migrate --all, servers drain, gc)."""
    progress = progress_bar(
        cli, doing, "tenants", TextColumn("{task.fields[failed]} failed"), quiet=quiet
    )
    failures = 0
    with progress:
        task = progress.add_task(doing, total=total, failed=0)

        def advance(ok: bool) -> None:
            nonlocal failures
            failures += 0 if ok else 1
            progress.update(task, advance=1, failed=failures)

        yield advance
