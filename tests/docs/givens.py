"""What a document may take as given, made for its session when its blocks mention it.

The docs speak to someone with files of their own (``manual.pdf``, ``faq.jsonl``, a
Chroma store in ``./chroma_db``) and servers of their own (``$PG_EU_1``, the admin DSN
of a Postgres to register). A session makes each one a block names before the document
runs: files in its working directory, servers as real Postgres clusters in its box.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["ENVIRONMENT", "FILES", "SERVERS", "needed", "tiny_pdf"]

# Environment variables a document may use, each the admin DSN of a Postgres server.
SERVERS = ("PG_EU_1", "PG_EU_2")
# Variables a document's reader has from elsewhere: a CI runner's job id (GitLab's name).
ENVIRONMENT = {"CI_JOB_ID": "4242"}


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, built by hand with a correct xref."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _pdf(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(tiny_pdf(text))


def _faq(path: Path) -> None:
    rows = [
        {"id": "faq-1", "text": "Refunds are paid back within five days.", "lang": "en"},
        {"id": "faq-2", "text": "Parcels ship within three working days.", "lang": "en"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _batch(path: Path) -> None:
    """A batch of text documents large enough to be an ingestion job."""
    documents = [
        {"id": f"scan-{n}", "text": f"Scanned page {n}: returns go to the Leeds depot."}
        for n in range(200)
    ]
    path.write_text(json.dumps({"documents": documents}))


def _chroma(collection: str, dims: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
        made = client.create_collection(collection, metadata={"hnsw:space": "cosine"})
        rng = random.Random(3)
        ids = [f"page-{n}" for n in range(40)]
        made.add(
            ids=ids,
            embeddings=[[rng.uniform(-1, 1) for _ in range(dims)] for _ in ids],
            documents=[f"Manual page {n}: press the red button to reset." for n in range(40)],
            metadatas=[{"page": n} for n in range(40)],
        )

    return make


# Paths as blocks write them, and how to make them in the working directory.
FILES: dict[str, Callable[[Path], None]] = {
    "manual.pdf": _pdf("Press the red button to reset the lantern."),
    "handbook.pdf": _pdf("New staff get a lantern on their first day."),
    "faq.jsonl": _faq,
    "batch.json": _batch,
    # README: a store of Chroma's default model's size (all-MiniLM-L6-v2, 384 dims).
    "./chroma_db": _chroma("manuals", 384),
    # docs/ingestion.md loads it into a tenant of 768 dims.
    "./chroma": _chroma("manuals", 768),
}


def needed(texts: list[str]) -> tuple[list[str], list[str]]:
    """The files and servers that the blocks ``texts`` name."""
    text = "\n".join(texts)
    files = [
        name for name in FILES if re.search(rf"(?<![\w/.-]){re.escape(name)}(?![\w/.-])", text)
    ]
    servers = [name for name in SERVERS if f"${name}" in text or f"${{{name}}}" in text]
    return files, servers


def _start_postgres(home: str, port: str) -> None:
    """Start a Postgres cluster in ``home`` and print its superuser DSN (run in the box)."""
    from controlplane.localpg import EmbeddedServer
    from tests.fixtures.postgres import throwaway_settings

    server = EmbeddedServer(throwaway_settings(Path(home), int(port)))
    server.ensure_running()
    print(server.superuser_conninfo().dsn)


if __name__ == "__main__":
    _start_postgres(sys.argv[1], sys.argv[2])
