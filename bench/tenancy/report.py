"""docs/tenancy-benchmark.md's generated section: tables and headline numbers from a run."""

from __future__ import annotations

from typing import Any

DEFAULT_EF = 40  # pgvector's default hnsw.ef_search


def render(results: dict[str, Any], plots: dict[str, str]) -> str:
    scale = results["scale"]
    lines = [
        f"Measured {results['measured']} on {results['machine']}; Postgres "
        f"{results['postgres']}, pgvector {results['pgvector']}; server settings "
        + ", ".join(f"`{k}={v}`" for k, v in results["server_settings"].items())
        + ".",
        "",
        f"Command: `{results['command']}` ({results['elapsed_minutes']:.1f} minutes in all)",
        "",
        f"**Data**: {scale['tenants']} tenants, {scale['vectors']:,} vectors of "
        f"{scale['dims']} dimensions, Zipf sizes (s={scale['zipf']}), {scale['clusters']} "
        f"Gaussian clusters per tenant around {scale['topics']} shared topics, seed "
        f"{scale['seed']}. {scale['queries']} queries per size class, the same for every "
        "layout; recall@10 against numpy brute force over the query's tenant.",
        "",
        "| size class | tenants | vectors per tenant | share of all vectors | "
        "own tenant in a query's global top-100 |",
        "|---|---|---|---|---|",
    ]
    for name, c in results["dataset"]["classes"].items():
        lines.append(
            f"| {name} | {c['tenants']} | {c['min']:,} - {c['max']:,} | "
            f"{c['share']:.1%} | {c['own_share']:.0%} |"
        )
    lines += [
        "",
        "### Build",
        "",
        "| layout | create | load | HNSW build | total | HNSW index size | on disk |",
        "|---|---|---|---|---|---|---|",
    ]
    for layout, b in results["builds"].items():
        s = b["seconds"]
        lines.append(
            f"| {layout} | {_s(s.get('create', 0))} | {_s(s['load'])} | {_s(s['index'])} | "
            f"{_s(sum(s.values()))} | {_bytes(b['index_bytes'])} | {_bytes(b['total_bytes'])} |"
        )
    lines += [
        "",
        "*on disk*: the table with all its indexes; for db-per-tenant the sum of the tenant "
        "databases, each with its own system catalogs and tenantvec's full schema "
        "(documents, chunk text search index).",
        "",
        f"![recall vs latency]({plots['recall']})",
        "",
    ]
    clients = sorted({p["clients"] for p in results["points"]})
    for size_class in ("small", "large"):
        lines += [
            f"### {size_class.capitalize()} tenants",
            "",
            "| layout | ef_search | recall@10 | rows returned | < 10 rows | plans via HNSW | "
            + " | ".join(f"{n} client{'s' if n > 1 else ''} p50 / p95 / p99 ms" for n in clients)
            + f" | connects per 1k queries ({clients[-1]} clients) |",
            "|---|---|---|---|---|---|" + "---|" * (len(clients) + 1),
        ]
        by_key = {
            (p["variant"], p["ef_search"], p["clients"]): p
            for p in results["points"]
            if p["size_class"] == size_class
        }
        for variant in dict.fromkeys(p["variant"] for p in results["points"]):
            for ef in results["ef_search"]:
                first = by_key[(variant, ef, clients[0])]
                cells = [
                    f"{by_key[(variant, ef, n)]['p50_ms']:.2f} / "
                    f"{by_key[(variant, ef, n)]['p95_ms']:.2f} / "
                    f"{by_key[(variant, ef, n)]['p99_ms']:.2f}"
                    for n in clients
                ]
                lines.append(
                    f"| {variant} | {ef} | {first['recall']:.3f} | {first['rows']:.1f} | "
                    f"{first['short']:.0%} | {first['via_index']:.0%} | "
                    + " | ".join(cells)
                    + f" | {by_key[(variant, ef, clients[-1])]['cold_per_1k']:.0f} |"
                )
        lines.append("")
    lines += [
        "Latencies pool every query of the timed passes "
        f"({results['runs']} after one warm-up pass); recall and rows come from the first "
        "timed pass. *plans via HNSW*: the share of the class's query tenants whose plan "
        "(EXPLAIN) uses the HNSW index rather than an exact scan. *connects per 1k queries*: "
        "connections the router had to open because the tenant's pool was evicted to stay "
        "within its per-server connection budget (`TENANTVEC_MAX_CONNECTIONS_PER_SERVER`, "
        "default 100; the `budget 250` line raises it above the number of tenants queried).",
        "",
        "### Operations",
        "",
        f"![operations]({plots['operations']})",
        "",
        "| layout | add a tenant (empty) | add a tenant + 1,000 vectors | disk of an empty "
        "tenant | delete a small tenant | delete the largest tenant | count chunks of every "
        "tenant |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in results["operations"]:
        lines.append(
            f"| {o['layout']} | {_s(o['add_empty_s'])} | {_s(o['add_loaded_s'])} | "
            f"{_bytes(o['empty_bytes'])} | {_phases(o['delete']['small'])} | "
            f"{_phases(o['delete']['large'])} | {_s(o['count_all_s'])} |"
        )
    small, large = results["delete_targets"]["small"], results["delete_targets"]["large"]
    lines += [
        "",
        "Deleted: small tenants of "
        + ", ".join(f"{n:,}" for n in small)
        + f" vectors (median time) and the largest, of {large[0]:,}; the shared table is "
        "vacuumed after each DELETE, as erasure requires. Adding and counting: medians of "
        f"{results['repeats']} repeats. db-per-tenant counts through tenantvec's router, 16 "
        "tenants at a time; its add and delete are tenantvec's `create_tenant` / "
        "`delete_tenant` (catalog record, role, database, schema).",
        "",
        "### Headline numbers",
        "",
        *headlines(results),
    ]
    return "\n".join(lines)


def headlines(results: dict[str, Any]) -> list[str]:
    points = results["points"]
    efs = results["ef_search"]
    ef = DEFAULT_EF if DEFAULT_EF in efs else efs[0]

    def at(variant: str, size_class: str, ef_search: int, clients: int = 1) -> dict[str, Any]:
        return next(
            p
            for p in points
            if p["variant"] == variant
            and p["size_class"] == size_class
            and p["ef_search"] == ef_search
            and p["clients"] == clients
        )

    hnsw, dbpt = at("shared, HNSW", "small", ef), at("db-per-tenant", "small", ef)
    strict = at("shared, HNSW strict_order", "small", ef)
    exact_large = at("shared, planner", "large", ef)
    dbpt_large = at("db-per-tenant", "large", ef)
    exact_large_16 = at("shared, planner", "large", ef, max(p["clients"] for p in points))
    dbpt_large_16 = at("db-per-tenant", "large", ef, exact_large_16["clients"])
    roomy = next(p["variant"] for p in points if p["variant"].startswith("db-per-tenant, budget"))
    classes = results["dataset"]["classes"]
    queried = classes["small"]["tenants"] + classes["large"]["tenants"]
    small_16 = {
        v: at(v, "small", ef, exact_large_16["clients"])
        for v in ("partitioned", "db-per-tenant", roomy)
    }
    ops = {o["layout"]: o for o in results["operations"]}
    shared_delete = sum(ops["shared"]["delete"]["large"].values())
    dbpt_delete = sum(ops["db-per-tenant"]["delete"]["large"].values())
    empty = ops["db-per-tenant"]["empty_bytes"]
    return [
        f"- Small tenants, ef_search={ef}, the shared table's HNSW index with a tenant filter: "
        f"{hnsw['recall']:.0%} of the true top 10, {hnsw['rows']:.1f} rows returned on "
        f"average, {hnsw['short']:.0%} of queries short of 10. db-per-tenant: "
        f"{dbpt['recall']:.0%}, {dbpt['rows']:.1f} rows. strict_order iterative scans fill the "
        f"page ({strict['rows']:.1f} rows) but recall stays {strict['recall']:.0%}, at p50 "
        f"{strict['p50_ms']:.1f} ms (db-per-tenant {dbpt['p50_ms']:.1f} ms).",
        f"- Large tenants, left to the planner, the shared table is searched exactly (b-tree "
        f"on tenant_id, then sort): recall {exact_large['recall']:.0%} but p50 "
        f"{exact_large['p50_ms']:.1f} ms with 1 client and {exact_large_16['p50_ms']:.1f} ms "
        f"with {exact_large_16['clients']}; db-per-tenant {dbpt_large['p50_ms']:.1f} / "
        f"{dbpt_large_16['p50_ms']:.1f} ms at recall {dbpt_large['recall']:.0%}.",
        f"- {exact_large_16['clients']} clients, queries spread over up to {queried} tenants, "
        f"small tenants' p50 / p95: partitioned {_ms(small_16['partitioned'])}, db-per-tenant "
        f"{_ms(small_16['db-per-tenant'])} with the default connection budget "
        f"({small_16['db-per-tenant']['cold_per_1k']:.0f} pool connects per 1k queries), "
        f"{_ms(small_16[roomy])} with {roomy.split(', ')[1]} "
        f"({small_16[roomy]['cold_per_1k']:.0f}).",
        f"- Deleting the largest tenant: shared table DELETE + VACUUM "
        f"{_s(shared_delete)}, db-per-tenant {_s(dbpt_delete)}.",
        f"- An empty tenant costs {_bytes(empty)} of disk as a database "
        f"({_bytes(empty * 10_000)} for 10,000 tenants) and "
        f"{_bytes(ops['partitioned']['empty_bytes'])} as a partition; creating one takes "
        f"{_s(ops['db-per-tenant']['add_empty_s'])} vs {_s(ops['partitioned']['add_empty_s'])}.",
        f"- Counting every tenant's chunks: {_s(ops['shared']['count_all_s'])} in the shared "
        f"table, {_s(ops['db-per-tenant']['count_all_s'])} across the tenant databases.",
    ]


def _ms(point: dict[str, Any]) -> str:
    return f"{point['p50_ms']:.1f} / {point['p95_ms']:.1f} ms"


def _phases(phases: dict[str, float]) -> str:
    if len(phases) == 1:
        return _s(next(iter(phases.values())))
    return " + ".join(f"{name} {_s(s)}" for name, s in phases.items())


def _s(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError
