"""PNG plots for `acr-bot bench` (matplotlib is an optional extra: pip install 'acr-bot[plot]')."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acr_bot.errors import AcrError


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never open a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise AcrError("plots need matplotlib: pip install 'acr-bot[plot]'") from None
    return plt


def stream_plot(report: dict[str, Any], out: Path) -> None:
    """Cumulative regret and running success rate over the stream, one line per policy."""
    plt = _pyplot()
    fig, (regret, success) = plt.subplots(1, 2, figsize=(13, 5))
    for policy in report["policies"]:
        curve = policy["curves"]
        style = "--" if policy["hindsight"] else "-"
        label = policy["policy"][:40] + (" (hindsight)" if policy["hindsight"] else "")
        regret.plot(curve["index"], curve["cumulative_regret"], style, label=label)
        success.plot(curve["index"], curve["success_rate"], style, label=label)
    regret.set(title="Cumulative regret", xlabel="stream row", ylabel="regret (utility)")
    success.set(title="Success rate so far", xlabel="stream row", ylabel="mean score")
    success.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{Path(report['dataset']).name}: {report['mode']}, "
                 f"cost weight {report['cost_weight']}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def pareto_plot(points: Sequence[dict[str, Any]], title: str, out: Path) -> None:
    """Success rate against total $ for each policy across cost weights."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name in dict.fromkeys(p["policy"] for p in points):
        mine = sorted((p for p in points if p["policy"] == name),
                      key=lambda p: p["total_cost_usd"])
        hindsight = mine[0]["hindsight"]
        ax.plot([p["total_cost_usd"] for p in mine], [p["success_rate"] for p in mine],
                "--o" if hindsight else "-o", markersize=4,
                label=name + (" (hindsight)" if hindsight else ""))
    ax.set(xscale="symlog", xlabel="total $ over the stream", ylabel="success rate", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
