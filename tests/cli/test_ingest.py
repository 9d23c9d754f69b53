"""``tenantctl ingest`` and ``tenantctl search`` with text, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.docs.givens import tiny_pdf
from tests.fixtures.cli import TenantCtl


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "guides").mkdir(parents=True)
    (root / "guides" / "refunds.md").write_text(
        "# Refund policy\n\nRefunds are issued within fourteen days.\n\n"
        "| item | refundable |\n|---|---|\n| gift card | no |\n"
    )
    (root / "shipping.txt").write_text("Parcels ship within three working days.")
    (root / "about.html").write_text(
        "<html><head><title>About us</title><script>var tracking = 1;</script></head>"
        "<body><h1>About</h1><p>We sell lanterns &amp; candles.</p></body></html>"
    )
    (root / "manual.pdf").write_bytes(tiny_pdf("Lantern manual: replace the wick yearly"))
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (root / "faq.jsonl").write_text(
        json.dumps({"id": "faq-1", "text": "Candles burn for forty hours.", "metadata": {"q": 1}})
        + "\nnot json at all\n"
        + json.dumps({"id": "faq-2", "text": "Lanterns are made of brass."})
        + "\n"
    )
    (root / "image.png").write_bytes(b"\x89PNG")  # not a document type: not read
    (root / ".hidden.md").write_text("secret notes")
    return root


def test_ingest_reports_bad_files_and_goes_on(
    tenantctl: TenantCtl, corpus: Path, tenant_id: str
) -> None:
    assert (
        tenantctl("tenants", "create", tenant_id, "--dims", "128", "--embedder", "hash").code == 0
    )
    first = tenantctl("ingest", tenant_id, str(corpus), "--json")
    assert first.code == 1, first.stderr  # some files failed
    summary = first.json()
    assert (summary["created"], summary["failed"], summary["unchanged"]) == (6, 2, 0)
    failed = {f["document"]: f["error"] for f in summary["failures"]}
    assert set(failed) == {"corpus/broken.pdf", "corpus/faq.jsonl:2"}
    assert "not a readable PDF" in failed["corpus/broken.pdf"]
    assert summary["chunks"] >= 6 and summary["chunks_per_second"] > 0

    again = tenantctl("ingest", tenant_id, str(corpus))
    assert again.code == 1
    assert "0 added, 0 updated, 6 unchanged, 2 failed" in again.stdout
    assert "skipped corpus/broken.pdf" in again.stderr

    shown = tenantctl("search", tenant_id, "how often to replace the wick", "--json").json()
    assert shown["results"][0]["document_id"] == "corpus/manual.pdf"
    html = tenantctl("search", tenant_id, "lanterns candles", "--mode", "keyword", "--json")
    documents = [h["document_id"] for h in html.json()["results"]]
    assert "corpus/about.html" in documents
    assert all("tracking" not in h["content"] for h in html.json()["results"])
    hybrid = tenantctl("search", tenant_id, "gift card refund", "--hybrid", "-k", "2")
    assert hybrid.code == 0 and "corpus/guides/refunds.md" in hybrid.stdout
    filtered = tenantctl("search", tenant_id, "candles", "--filter", '{"q": 1}', "--json").json()
    assert [h["document_id"] for h in filtered["results"]] == ["faq-1"]
    nothing = tenantctl("search", tenant_id, "zebra", "--mode", "keyword")
    assert nothing.code == 0 and "no results" in nothing.stdout


def test_changed_files_are_updated(tenantctl: TenantCtl, tmp_path: Path, tenant_id: str) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "64", "--embedder", "hash").code == 0
    note = tmp_path / "note.md"
    note.write_text("First version of the note.")
    assert tenantctl("ingest", tenant_id, str(note), "--json").json()["created"] == 1
    note.write_text("Second version of the note.")
    result = tenantctl("ingest", tenant_id, str(note), "--json")
    assert result.code == 0 and result.json()["updated"] == 1
    hits = tenantctl("search", tenant_id, "second", "--mode", "keyword", "--json").json()
    assert [h["document_id"] for h in hits["results"]] == ["note.md"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{tenant}"], "give a QUERY, or --vector"),
        (["search", "{tenant}", "q", "--hybrid", "--mode", "vector"], "contradicts"),
        (["search", "{tenant}", "q", "--keyword-weight", "2"], "keyword_weight"),
        (["ingest", "{tenant}", "/no/such/path"], "does not exist"),
        (["ingest", "no-such-tenant", "{file}"], "not found"),
    ],
)
def test_bad_usage_is_one_line_and_nonzero(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str, args: list[str], message: str
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "8", "--embedder", "hash").code == 0
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    result = tenantctl(*[a.format(tenant=tenant_id, file=doc) for a in args])
    assert result.code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_jsonl_with_vectors_goes_into_a_tenant_without_an_embedder(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str
) -> None:
    # Vectors made elsewhere (OpenAI, Voyage): each line is the API's document with
    # its chunks; lines that are not are reported with their line number.
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    lines = [
        {"id": "north", "chunks": [{"content": "the north wing", "embedding": [1, 0, 0]}]},
        {
            "id": "east",
            "metadata": {"floor": 2},
            "chunks": [
                {"content": "the east wing", "embedding": [0, 1, 0], "id": "east-a"},
                {"content": "the east stairs", "embedding": [0, 0.9, 0.1]},
            ],
        },
        {"id": "wrong-size", "chunks": [{"content": "x", "embedding": [1, 0]}]},
        {"id": "not-a-number", "chunks": [{"content": "x", "embedding": [1, "a", 0]}]},
        {
            "id": "deep",
            "chunks": [{"content": "x", "embedding": [0, 0, 1], "metadata": {"a": [[[[[]]]]]}}],
        },
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    text += "\n" + '{"id": "nested", "chunks": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    (tmp_path / "vectors.jsonl").write_text(text)

    result = tenantctl("ingest", tenant_id, str(tmp_path / "vectors.jsonl"), "--json")
    assert result.code == 1, result.stderr
    summary = result.json()
    assert (summary["created"], summary["chunks"]) == (3, 4)
    failed = {f["document"]: f["error"] for f in summary["failures"]}
    assert "expects 3 dimensions, got 2" in failed["wrong-size"]
    assert "Expected `float`, got `str`" in failed["vectors.jsonl:4"]
    assert "nested too deeply" in failed["vectors.jsonl:6"]

    found = tenantctl("search", tenant_id, "--vector", "[0, 1, 0]", "-k", "2", "--json").json()
    assert [h["chunk_id"] for h in found["results"]] == ["east-a", "east#1"]


def test_the_last_version_of_a_document_wins_with_two_writers(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str
) -> None:
    # Exact search: every replaced version's index entry would otherwise count against
    # an HNSW scan's ef_search until a vacuum (pgvector).
    created = tenantctl("tenants", "create", tenant_id, "--dims", "2", "--index", "none")
    assert created.code == 0, created.stderr
    lines = []
    # The same ids three times, more than a batch (256) each: batches that overlap in time.
    for version in range(3):
        for i in range(300):
            chunk = {"content": f"v{version}", "embedding": [1, i + version]}
            lines.append(json.dumps({"id": f"doc-{i}", "chunks": [chunk]}))
    (tmp_path / "versions.jsonl").write_text("\n".join(lines) + "\n")
    result = tenantctl("ingest", tenant_id, str(tmp_path / "versions.jsonl"), "--writers", "3")
    assert result.code == 0, result.stderr
    found = tenantctl("search", tenant_id, "--vector", "[1, 0]", "-k", "40", "--json").json()
    assert {h["content"] for h in found["results"]} == {"v2"}
    assert len(found["results"]) == 40
