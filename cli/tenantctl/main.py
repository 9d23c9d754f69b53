"""``tenantctl``: the operator's command line. Thin: parse, call the library, render."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Annotated

import typer

from controlplane.errors import TenantvecError
from controlplane.logs import SafeFormatter
from tenantctl import (
    api,
    backups,
    demo,
    documents,
    imports,
    maintenance,
    moves,
    server,
    servers,
    tenant_changes,
    tenants,
)
from tenantctl.context import Cli
from tenantctl.errors import EXIT_CODES_HELP, FAILURE, USAGE, exit_code_for

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="tenantctl",
    help=(
        "Operate tenantvec: a Postgres database per tenant, ready for vector search.\n\n"
        "Start with 'tenantctl up', then 'tenantctl tenants create acme' (text in, answers "
        "out: the default embedder) or 'tenantctl tenants create acme --dims 1536' (the "
        "vectors your application makes). Settings come from TENANTVEC_* environment "
        "variables ('tenantctl settings')."
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
tenant_changes.register(tenants.app)
backups.register(tenants.app)
moves.register(tenants.app)
app.add_typer(tenants.app, name="tenants")
app.add_typer(servers.app, name="servers")
app.add_typer(documents.app, name="docs")
app.add_typer(imports.app, name="import")
server.register(app)
maintenance.register(app)
api.register(app)
app.command("demo")(demo.demo)


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="TENANTVEC_DEBUG", help="Show tracebacks and debug logs."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what is being done, on stderr.")
    ] = False,
) -> None:
    # ``ctx.obj`` arrives holding the environment :func:`main` was given.
    from controlplane.settings import Settings

    environ: Mapping[str, str] = ctx.obj if isinstance(ctx.obj, Mapping) else os.environ
    debug = debug or bool(environ.get("TENANTVEC_DEBUG"))
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    # force: a second command in one process (tests, a shell) logs to its own stderr.
    logging.basicConfig(level=level, handlers=[handler], force=True)
    ctx.obj = Cli(settings=Settings.from_env(environ), debug=debug, environ=environ)


def main(args: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one command, as the shell would; returns the exit code. Errors are one line
    on stderr. ``environ`` replaces ``os.environ`` for the command's settings."""
    environ = os.environ if environ is None else environ
    debug = bool(environ.get("TENANTVEC_DEBUG")) or "--debug" in (args or sys.argv[1:])
    try:
        # Without standalone mode, click returns the code of a typer.Exit instead of
        # raising it.
        code = app(
            args=list(args) if args is not None else None,
            prog_name="tenantctl",
            standalone_mode=False,
            obj=environ,
        )
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return _fail("aborted", 130)
    except typer.TyperException as exc:
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        return _fail(exc.format_message() + hint, USAGE)
    except TenantvecError as exc:
        if debug:
            traceback.print_exc()
        return _fail(str(exc), exit_code_for(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # a bug: say so briefly, show the traceback on request
        if debug:
            traceback.print_exc()
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", FAILURE
        )


def run() -> None:
    """Console entry point: one line on stderr and a meaningful exit code on error."""
    sys.exit(main())


def _fail(message: str, code: int) -> int:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"error: {first}\n")
    return code
