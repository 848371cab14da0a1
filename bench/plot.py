"""The bench's figure, from its results file (bench/run.ts runs it after writing bench/results.json).

  python bench/plot.py bench/results.json bench/results.png

Three panels: HTTP tokens/s against concurrency (one adapter, and one adapter per client) with the Python
loops and the graphs' own bound; per-query cost against k; each target's ratio over its threshold. Error
bars are the spread (min-max) over the interleaved rounds, or over tasks.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _bars(s: dict) -> tuple[float, list[float]]:
    return s["median"], [s["median"] - s["min"], s["max"] - s["median"]]


def throughput(ax, res: dict) -> None:
    rows = res["summary"]["throughput"]
    b = res["http"]["batch_concurrency"]
    for label, pick, marker in (
        ("1 adapter", lambda r: r["adapters"] == 1, "o"),
        ("1 adapter per client", lambda r: r["adapters"] == r["concurrency"], "s"),
    ):
        sel = sorted((r for r in rows if pick(r)), key=lambda r: r["concurrency"])
        if not sel:
            continue
        xs = [r["concurrency"] for r in sel]
        meds = [_bars(r["tokens_per_s"]) for r in sel]
        ax.errorbar(
            xs,
            [m for m, _ in meds],
            yerr=list(zip(*[e for _, e in meds])),
            marker=marker,
            capsize=3,
            label=f"HTTP, {label}",
        )
    names = {"ort": "ONNX Runtime Python loop", "torch": "PyTorch eager"}
    for ref in res["summary"]["reference"]:
        if ref["batch"] == 1 and ref["adapters"] == 1:
            ax.axhline(
                ref["tokens_per_s"]["median"],
                ls=":",
                color="grey" if ref["runtime"] == "torch" else "black",
                label=f"{names[ref['runtime']]}, batch 1",
            )
    bound = res["summary"]["limit"]["graph_bound_tokens_per_s"]
    if bound:
        ax.errorbar(
            [b],
            [bound["median"]],
            yerr=[[bound["median"] - bound["min"]], [bound["max"] - bound["median"]]],
            marker="*",
            ms=12,
            ls="none",
            color="red",
            capsize=3,
            label=f"graphs' own bound at batch {b}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted({r["concurrency"] for r in rows}), [str(c) for c in sorted({r["concurrency"] for r in rows})])
    ax.set_xlabel("concurrency")
    ax.set_ylabel("generated tokens/s")
    ax.set_title("Throughput (median, min-max over rounds)")
    ax.legend(fontsize=7)


def per_query(ax, res: dict) -> None:
    pq = res["python"]["per_query"]
    ks = [r["k"] for r in pq["rows"]]
    ax.plot(ks, [r["hyper_ms"] for r in pq["rows"]], marker="o", label="hyper adapter")
    ax.plot(ks, [r["in_context_ms"] for r in pq["rows"]], marker="s", label="demonstrations in the prompt")
    ax.set_xlabel("k (examples)")
    ax.set_ylabel(f"ms per query ({pq['output_tokens']} output tokens)")
    ax.set_title("Per-query cost vs k (ONNX Runtime)")
    ax.legend(fontsize=7)


def targets(ax, res: dict) -> None:
    rows = [t for t in res["targets"] if t.get("ratio") and t.get("threshold")]
    names = [textwrap.fill(t["name"].split(" (")[0], 34) for t in rows]
    meds = [t["ratio"]["median"] / t["threshold"] for t in rows]
    errs = [
        [(t["ratio"]["median"] - t["ratio"]["min"]) / t["threshold"] for t in rows],
        [(t["ratio"]["max"] - t["ratio"]["median"]) / t["threshold"] for t in rows],
    ]
    ys = range(len(rows))
    ax.barh(ys, meds, xerr=errs, capsize=3, color=["tab:green" if t["pass"] else "tab:red" for t in rows])
    ax.axvline(1, color="black", lw=1)
    ax.set_yticks(list(ys), names, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("measured / wanted (1 = the target)")
    ax.set_title("Targets")


def main() -> None:
    res = json.loads(Path(sys.argv[1]).read_text())
    fig, axes = plt.subplots(1, 3, figsize=(18, 6), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    throughput(axes[0], res)
    per_query(axes[1], res)
    targets(axes[2], res)
    m = res["meta"]
    flag = "  FLAGGED: other load during the run" if m["flagged"] else ""
    quick = "  QUICK (smoke test)" if m["quick"] else ""
    fig.suptitle(f"{m['model_name']} ({m['fingerprint']}), {m['cpu']}, {m['date'][:10]}{quick}{flag}", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
