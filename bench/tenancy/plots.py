"""The pictures of docs/tenancy-benchmark.md, drawn with matplotlib (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: runs on servers and in CI without a display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

STYLE = {
    "shared, planner": ("tab:gray", "o"),
    "shared, HNSW": ("tab:red", "o"),
    "shared, HNSW relaxed_order": ("tab:orange", "s"),
    "shared, HNSW strict_order": ("tab:brown", "D"),
    "partitioned": ("tab:blue", "^"),
    "db-per-tenant": ("tab:green", "v"),
    "db-per-tenant, budget 250": ("tab:olive", "P"),
}


def recall_latency(points: list[dict[str, Any]], clients: list[int], path: Path) -> None:
    """Recall@10 against p50 latency, one line per variant through its ef_search values."""
    classes = ["small", "large"]
    floor = max(0.0, min(p["recall"] for p in points) - 0.05)  # zoom on where lines differ
    fig, axes = plt.subplots(
        len(clients), len(classes), figsize=(11, 4.2 * len(clients)), squeeze=False
    )
    for row, n in enumerate(clients):
        for col, size_class in enumerate(classes):
            ax = axes[row][col]
            for variant, (colour, marker) in STYLE.items():
                line = sorted(
                    (p for p in points if _is(p, variant, n, size_class)),
                    key=lambda p: p["ef_search"],
                )
                if not line:
                    continue
                xs = [p["p50_ms"] for p in line]
                ys = [p["recall"] for p in line]
                ax.plot(xs, ys, marker=marker, color=colour, label=variant)
                for p in line:
                    ax.annotate(
                        str(p["ef_search"]),
                        (p["p50_ms"], p["recall"]),
                        textcoords="offset points",
                        xytext=(4, -10),
                        fontsize=7,
                        color=colour,
                    )
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
            ax.tick_params(axis="x", which="minor", labelsize=7)
            ax.set_ylim(floor, 1.005)
            ax.set_xlabel("p50 latency per query, ms (log)")
            ax.set_ylabel("recall@10")
            ax.set_title(f"{size_class} tenants, {n} client{'s' if n > 1 else ''}")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Recall vs latency by tenancy layout (labels: hnsw.ef_search)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def operations(ops: list[dict[str, Any]], path: Path) -> None:
    """Seconds to delete a small and a large tenant, and to add one, per layout."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    layouts = [o["layout"] for o in ops]
    width = 0.38
    for i, size_class in enumerate(["small", "large"]):
        seconds = [sum(o["delete"][size_class].values()) for o in ops]
        xs = [x + (i - 0.5) * width for x in range(len(ops))]
        bars = left.bar(xs, seconds, width, label=f"{size_class} tenant")
        left.bar_label(bars, labels=[_seconds(s) for s in seconds], fontsize=7)
    left.set_xticks(range(len(ops)), layouts)
    left.set_yscale("log")
    left.set_ylabel("seconds (log)")
    left.set_title("Delete one tenant's data (incl. VACUUM)")
    left.legend(fontsize=8)
    for i, (key, label) in enumerate(
        [("add_empty_s", "empty, ready"), ("add_loaded_s", "+ 1,000 vectors")]
    ):
        seconds = [max(o[key], 1e-4) for o in ops]
        xs = [x + (i - 0.5) * width for x in range(len(ops))]
        bars = right.bar(xs, seconds, width, label=label)
        right.bar_label(bars, labels=[_seconds(o[key]) for o in ops], fontsize=7)
    right.set_xticks(range(len(ops)), layouts)
    right.set_yscale("log")
    right.set_title("Add a tenant")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _is(point: dict[str, Any], variant: str, clients: int, size_class: str) -> bool:
    return bool(
        point["variant"] == variant
        and point["clients"] == clients
        and point["size_class"] == size_class
    )


def _seconds(s: float) -> str:
    if s == 0:
        return "0"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"
