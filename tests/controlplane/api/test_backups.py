"""Backups and restores through the real API and the Python client: the file out and
back in, admin only, bad files, the size limit, and an id already taken."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest

from controlplane.client import Client
from controlplane.errors import BackupInvalid, PermissionDenied, TenantExists, TenantNotFound
from controlplane.retrieval import ChunkIn, DocumentIn, UpsertRequest
from tests.fixtures.api import RunningApi, StartApi, json_shape
from tests.fixtures.cli import TenantCtl


def docs(n: int) -> UpsertRequest:
    return UpsertRequest(
        documents=[
            DocumentIn(
                id=f"d{i}",
                metadata={"i": i},
                chunks=[ChunkIn(content=f"chunk {i}", embedding=[1.0, i / 100, 0.5])],
            )
            for i in range(n)
        ]
    )


def test_a_tenant_goes_out_as_a_file_and_comes_back_verified(
    api: RunningApi, tenant_id: str, tenantctl: TenantCtl, tmp_path: Path
) -> None:
    key = api.new_tenant(
        tenant_id, dims=3, embedder="hash", labels={"plan": "pro"}, recall_target=0.97
    )
    with Client(api.url, key) as tenant:
        tenant.upsert(tenant_id, docs(25))
        # A tenant's own key may not take its backup: backups are the operator's.
        with pytest.raises(PermissionDenied):
            tenant.backup_tenant(tenant_id)
        with pytest.raises(PermissionDenied):
            tenant.restore_tenant(b"anything", as_id=f"{tenant_id}-x")
    copy = f"{tenant_id}-copy"
    with Client(api.url, api.admin_token) as admin:
        backup = admin.backup_tenant(tenant_id)
        with tarfile.open(fileobj=io.BytesIO(backup)) as archive:
            assert sorted(archive.getnames()) == ["manifest.json", "tenant.dump"]
        restored = admin.restore_tenant(backup, as_id=copy)
        assert restored.verified and restored.restored_from == tenant_id
        assert (restored.documents, restored.chunks) == (25, 25)
        assert restored.tenant.id == copy and restored.tenant.state == "ready"
        assert restored.tenant.labels == {"plan": "pro"}
        assert restored.tenant.recall["target"] == 0.97
        assert admin.count_documents(copy).documents == 25
        assert admin.list_keys(copy) == []  # keys do not travel
        # Its own id is taken while the original lives.
        with pytest.raises(TenantExists):
            admin.restore_tenant(backup)
        # One shape per operation: `tenantctl tenants restore --json` answers as the API.
        file = tmp_path / "backup.tvbackup"
        file.write_bytes(backup)
        cli = tenantctl("tenants", "restore", str(file), "--as", f"{copy}-cli", "--json")
        assert cli.code == 0, cli.stderr
        with api.admin() as raw:
            answer = raw.post("/v1/restores", params={"as": f"{copy}-api"}, content=backup)
        assert answer.status_code == 201, answer.text
        assert json_shape(cli.json()) == json_shape(answer.json())
        for t in (tenant_id, copy, f"{copy}-cli", f"{copy}-api"):
            admin.delete_tenant(t)


def test_what_is_not_a_backup_is_a_400_and_makes_nothing(api: RunningApi, tenant_id: str) -> None:
    with api.admin() as admin:
        for body in (b"", b"not a backup", b"\x00" * 2048):
            answer = admin.post(
                "/v1/restores",
                params={"as": tenant_id},
                content=body,
                headers={"Content-Type": "application/x-tar"},
            )
            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert "tenantvec backup" in answer.json()["detail"]
        assert admin.get(f"/v1/tenants/{tenant_id}").status_code == 404
        # A bad id is refused before anything is read into a tenant.
        bad = admin.post("/v1/restores", params={"as": "Bad_Id"}, content=b"x")
        assert bad.status_code == 400
    with Client(api.url, api.admin_token) as client, pytest.raises(BackupInvalid):
        client.restore_tenant(b"garbage", as_id=tenant_id)


def test_a_backup_over_the_limit_is_a_413_naming_the_setting(
    start_api: StartApi, tenant_id: str
) -> None:
    small = start_api(env={"TENANTVEC_MAX_RESTORE_BYTES": "4096"})
    with httpx.Client(base_url=small.url, timeout=30) as http:
        answer = http.post(
            "/v1/restores",
            params={"as": tenant_id},
            content=b"\x00" * 100_000,
            headers={"Authorization": f"Bearer {small.admin_token}"},
        )
    assert answer.status_code == 413
    assert "TENANTVEC_MAX_RESTORE_BYTES" in answer.json()["detail"]
    with Client(small.url, small.admin_token) as admin, pytest.raises(TenantNotFound):
        admin.get_tenant(tenant_id)  # nothing was made
