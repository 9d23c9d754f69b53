"""The pytest plugin as an application's test suite uses it: a separate pytest run (a
real subprocess, the plugin loaded by its ``pytest11`` entry point) against a real
embedded Postgres, and against the control plane of the session's settings."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from controlplane.lifecycle.tenants import list_tenants
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from controlplane.testing import Harness
from tests.fixtures.cli import TenantCtl, settings_env

pytest_plugins = ["pytester"]

# An application's tests, as its developers would write them.
APP_TESTS = """
import json, os
import psycopg
import pytest
from controlplane.retrieval import DocumentIn, SearchRequest, UpsertRequest

SEEN = os.environ["SEEN_FILE"]

def record(**facts):
    with open(SEEN, "a") as out:
        out.write(json.dumps(facts) + "\\n")

def test_dsn_is_its_own_database_and_role(tenantvec, tenantvec_tenant):
    record(test="home", tenant="", home=str(tenantvec.settings.home))
    with psycopg.connect(tenantvec_tenant.dsn) as conn:
        db, role = conn.execute("select current_database(), current_user").fetchone()
        conn.execute("select count(*) from chunks").fetchone()  # the schema is applied
    record(test="dsn", tenant=tenantvec_tenant.id, db=db, role=role)
    assert role != "postgres"

@pytest.mark.tenantvec(dims=3, embedder="hash", labels={"suite": "app"})
def test_client_upserts_and_searches(tenantvec_tenant, tenantvec_client):
    t = tenantvec_tenant
    docs = [DocumentIn(id="a", text="refunds take five days")]
    tenantvec_client.upsert(t.id, UpsertRequest(documents=docs))
    hits = tenantvec_client.search(t.id, SearchRequest(text="refunds", k=1)).results
    assert hits[0].document_id == "a"
    assert tenantvec_client.whoami().tenant == t.id
    record(test="client", tenant=t.id)

@pytest.mark.asyncio
async def test_async_client(tenantvec_tenant):
    async with tenantvec_tenant.async_client() as client:
        assert (await client.count_documents(tenantvec_tenant.id)).documents == 0
    record(test="async", tenant=tenantvec_tenant.id)

def test_several_tenants_are_apart(tenantvec, tenantvec_session_tenant):
    with tenantvec.tenant(dims=8, embedder="hash") as other:
        assert other.id != tenantvec_session_tenant.id
        with psycopg.connect(other.dsn) as conn:
            db = conn.execute("select current_database()").fetchone()[0]
        # Its role cannot reach the session tenant's database.
        session_db = psycopg.conninfo.conninfo_to_dict(tenantvec_session_tenant.dsn)["dbname"]
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                psycopg.conninfo.make_conninfo(other.dsn, dbname=session_db), connect_timeout=3
            ).close()
    record(test="several", tenant=other.id, session=tenantvec_session_tenant.id)

@pytest.mark.tenantvec(dims=3, bogus=1)
def test_bad_options_fail_the_test_clearly(tenantvec_tenant):
    pass
"""


ROOT = Path(__file__).resolve().parents[3]


def readme_example() -> str:
    """The README's copy-paste example of the plugin, as it stands there."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### A throwaway tenant in your own pytest suite") :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def _seen(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _tenants(settings: Settings, ids: set[str]) -> dict[str, tuple[str, object, dict[str, str]]]:
    async def read() -> dict[str, tuple[str, object, dict[str, str]]]:
        async with ControlPlane.open(settings) as plane:
            found = await list_tenants(plane, include_deleted=True)
            return {t.id: (t.state.value, t.expires_at, t.labels) for t in found if t.id in ids}

    return asyncio.run(read())


def test_an_application_suite_on_a_throwaway_embedded_server(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("TENANTVEC_")]:
        monkeypatch.delenv(name)  # as on a developer's machine: nothing configured
    seen = tmp_path / "seen.jsonl"
    monkeypatch.setenv("SEEN_FILE", str(seen))
    pytester.makepyfile(test_app=APP_TESTS, test_readme=readme_example())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    result.assert_outcomes(passed=7, errors=1)  # test_readme.py: its three tests pass
    # The bad marker option is named, as a setup error of that test alone.
    result.stdout.fnmatch_lines(["*InvalidRequest*bogus*"])
    facts = {f["test"]: f for f in _seen(seen)}
    home = Path(facts.pop("home")["home"])
    assert set(facts) == {"dsn", "client", "async", "several"}
    assert facts["dsn"]["db"].startswith("tv_")  # a database of its own, named by its uid
    # Each test had a tenant of its own; the session tenant is another one.
    ids = {f["tenant"] for f in facts.values()} | {facts["several"]["session"]}
    assert len(ids) == 5
    # Nothing is left: the throwaway server is stopped and its home removed.
    assert home.name.startswith("tenantvec-pytest-") and not home.exists()


def test_on_the_control_plane_of_the_settings_tenants_are_deleted_or_expire(
    pytester: pytest.Pytester,
    pg_settings: Settings,
    tenantctl: TenantCtl,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in settings_env(pg_settings).items():
        monkeypatch.setenv(name, value)
    seen = tmp_path / "seen.jsonl"
    monkeypatch.setenv("SEEN_FILE", str(seen))
    pytester.makepyfile(
        test_app="""
import json, os, signal
import pytest

@pytest.mark.tenantvec(dims=3)
def test_finishes(tenantvec_tenant):
    with open(os.environ["SEEN_FILE"], "a") as out:
        out.write(json.dumps({"test": "finishes", "tenant": tenantvec_tenant.id}) + "\\n")

@pytest.mark.tenantvec(dims=3)
def test_run_dies(tenantvec_tenant):
    with open(os.environ["SEEN_FILE"], "a") as out:
        out.write(json.dumps({"test": "dies", "tenant": tenantvec_tenant.id}) + "\\n")
    os.kill(os.getpid(), signal.SIGKILL)  # no teardown runs after this
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--tenantvec=settings", "--tenantvec-ttl=2s", timeout=300
    )
    assert result.ret != 0  # killed
    facts = {f["test"]: f["tenant"] for f in _seen(seen)}
    tenants = _tenants(pg_settings, set(facts.values()))
    finished_state, _, labels = tenants[facts["finishes"]]
    assert finished_state == TenantState.DELETED.value and labels["created-by"] == "pytest"
    dead_state, expires_at, _ = tenants[facts["dies"]]
    assert dead_state == TenantState.READY.value and expires_at is not None
    # What the dead run left expires, and gc deletes it.
    time.sleep(2.5)
    gc = tenantctl("gc", "--json")
    assert gc.code == 0, gc.stderr
    assert _tenants(pg_settings, {facts["dies"]})[facts["dies"]][0] == TenantState.DELETED.value


def test_a_harness_never_started_holds_nothing_and_leaves_nothing() -> None:
    harness = Harness.throwaway()
    home = harness.settings.home
    assert home.is_dir() and harness._thread is None  # no loop, no thread until start()
    with pytest.raises(RuntimeError, match="start"):
        harness.new_tenant()
    harness.close()
    assert not home.exists()
