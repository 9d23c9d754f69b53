"""``tenantctl``: the operator's command line. Thin: parse, call the library, render."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Annotated

import typer

from cli import api, demo, imports, maintenance, server, servers, tenant_changes, tenants
from cli.context import Cli
from cli.errors import EXIT_CODES_HELP, FAILURE, USAGE, exit_code_for
from controlplane.errors import TenantvecError
from controlplane.logs import SafeFormatter
from controlplane.settings import Settings

__all__ = ["app", "run"]

app = typer.Typer(
    name="tenantctl",
    help=(
        "Operate tenantvec: a Postgres database per tenant, ready for vector search.\n\n"
        "Start with 'tenantctl up', then 'tenantctl tenants create acme --dims 768'. "
        "Settings come from TENANTVEC_* environment variables ('tenantctl settings')."
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
tenant_changes.register(tenants.app)
app.add_typer(tenants.app, name="tenants")
app.add_typer(servers.app, name="servers")
app.add_typer(imports.app, name="import")
server.register(app)
maintenance.register(app)
api.register(app)
app.command("demo")(demo.demo)

_debug = False


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="TENANTVEC_DEBUG", help="Show tracebacks and debug logs."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what is being done, on stderr.")
    ] = False,
) -> None:
    global _debug
    _debug = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    ctx.obj = Cli(settings=Settings.from_env(), debug=debug)


def run() -> None:
    """Console entry point: one line on stderr and a meaningful exit code on error."""
    try:
        # Without standalone mode, click returns the code of a typer.Exit instead of
        # raising it.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.TyperException as exc:
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        _fail(exc.format_message() + hint, USAGE)
    except TenantvecError as exc:
        if _debug:
            traceback.print_exc()
        _fail(str(exc), exit_code_for(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # a bug: say so briefly, show the traceback on request
        if _debug or os.environ.get("TENANTVEC_DEBUG"):
            traceback.print_exc()
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", FAILURE
        )


def _fail(message: str, code: int) -> None:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"error: {first}\n")
    sys.exit(code)
