"""The plots of docs/performance.md, drawn from bench/startup_memory.py's raw numbers.

Reads bench/results/startup-memory.json (each layout's list of rounds, as startup_memory.py writes
it) and writes four PNGs into docs/images/: start times, idle memory by role, where an async query's
time goes, and the 20 x 1 s queries on 4 slots. Bars are medians over the rounds, whiskers the
min-max. startup_memory.py calls this at its end; run it alone to redraw from a JSON:

  .venv/bin/python bench/plot.py [--input bench/results/startup-memory.json] [--out docs/images]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # after the backend is chosen

REPO = Path(__file__).resolve().parents[1]
INPUT = REPO / "bench" / "results" / "startup-memory.json"
OUT = REPO / "docs" / "images"
LAYOUTS = ("A", "B")
LABELS = {"A": "A: seed layout", "B": "B: superset-async runner"}
COLOURS = {"A": "#9e9e9e", "B": "#1f77b4"}
PNG_METADATA = {"Software": None}  # no matplotlib version in the file: a redraw of the same numbers is the same file

Runs = dict[str, list[dict[str, float]]]


def _values(runs: Runs, layout: str, key: str) -> list[float]:
    return [m[key] for m in runs.get(layout, []) if key in m]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _grouped_bars(
    ax: plt.Axes, runs: Runs, keys: Sequence[tuple[str, str]], unit: str, *, scale: float = 1.0, digits: int = 1
) -> None:
    """One group per figure, one bar per layout: median, whiskers min-max, the median written on top."""
    width = 0.38
    for i, layout in enumerate(LAYOUTS):
        xs, heights, low, high = [], [], [], []
        for j, (key, _) in enumerate(keys):
            values = [v * scale for v in _values(runs, layout, key)]
            med = _median(values)
            xs.append(j + (i - 0.5) * width)
            heights.append(med)
            low.append(med - min(values) if values else 0.0)
            high.append(max(values) - med if values else 0.0)
        bars = ax.bar(xs, heights, width, label=LABELS[layout], color=COLOURS[layout], yerr=[low, high], capsize=3)
        ax.bar_label(bars, labels=[f"{h:.{digits}f}" if h else "" for h in heights], padding=2, fontsize=8)
    ax.set_xticks(range(len(keys)), [label for _, label in keys], fontsize=9)
    ax.set_ylabel(unit)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _stacked(ax: plt.Axes, runs: Runs, parts: Sequence[tuple[str, str, str]], unit: str, scale: float = 1.0) -> None:
    """One stacked bar per layout: the median of each part, in `unit`."""
    top = 0.0
    for i, layout in enumerate(LAYOUTS):
        bottom = 0.0
        for key, label, colour in parts:
            value = _median(_values(runs, layout, key)) * scale
            ax.bar(i, value, 0.55, bottom=bottom, color=colour, label=label if i == 0 else None, edgecolor="white")
            if value > 0:
                ax.text(i, bottom + value / 2, f"{value:.0f}", ha="center", va="center", fontsize=8)
            bottom += value
        ax.text(i, bottom, f"{bottom:.0f} {unit}", ha="center", va="bottom", fontsize=9)
        top = max(top, bottom)
    ax.set_xticks(range(len(LAYOUTS)), [LABELS[layout] for layout in LAYOUTS], fontsize=9)
    ax.set_xlim(-0.6, 2.6)  # room on the right for the legend
    ax.set_ylim(0, top * 1.12)
    ax.set_ylabel(unit)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=PNG_METADATA)
    plt.close(fig)
    return path


def plot_start(runs: Runs, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.2))
    keys = (
        ("restart_s", "start with state,\nwall"),
        ("restart_cpu_s", "start with state,\nCPU"),
        ("first_start_s", "first-ever start,\nwall"),
        ("first_start_cpu_s", "first-ever start,\nCPU"),
    )
    _grouped_bars(ax, runs, keys, "seconds")
    ax.set_title("Start -> first async query's rows (lower is better)", fontsize=10)
    return _save(fig, out / "perf-start.png")


def plot_memory(runs: Runs, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.2))
    parts = (
        ("pss_web_mib_after_start", "web (gunicorn)", "#4c72b0"),
        ("pss_worker_mib_after_start", "worker (Celery, 4 children)", "#55a868"),
        ("pss_beat_mib_after_start", "beat", "#c44e52"),
        ("pss_redis_mib_after_start", "Redis", "#8172b2"),
    )
    _stacked(ax, runs, parts, "MiB")
    ax.set_title("Idle PSS after start, by role (supervisor apart)", fontsize=10)
    return _save(fig, out / "perf-memory.png")


def plot_async(runs: Runs, out: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    parts = (
        ("proto_submit_s", "submit request (202)", "#4c72b0"),
        ("proto_to_task_end_s", "202 -> task ended (hand-off, task)", "#55a868"),
        ("proto_poll_lag_s", "task ended -> a poll saw it", "#c44e52"),
        ("proto_results_s", "request for the rows", "#8172b2"),
    )
    _stacked(left, runs, parts, "ms", scale=1000)
    left.set_title("Async SELECT 1 as the client sees it (50 ms polling)", fontsize=10)
    keys = (("sync_s", "sync\nSELECT 1"),)
    _grouped_bars(right, runs, keys, "ms", scale=1000, digits=0)
    right.set_title("Sync SELECT 1", fontsize=10)
    return _save(fig, out / "perf-async.png")


def plot_sleepers(runs: Runs, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.2))
    keys = (
        ("sleepers_wall_s", "20 x sleep(1),\nwall"),
        ("short_during_sleepers_s", "SELECT 1 among\nthem, latency"),
        ("lane_short_during_sleepers_s", "the same on a lane's\ndatabase (B only)"),
    )
    _grouped_bars(ax, runs, keys, "seconds")
    # The legend again, now that it has the lines to name too.
    ax.hlines(5.0, -0.45, 0.45, color="black", linestyle="--", linewidth=1, label="ideal: 5 s")
    ax.hlines(6.5, -0.45, 0.45, color="#c44e52", linestyle=":", linewidth=1.5, label="goal: 1.3 x ideal")
    ax.hlines(1.0, 0.55, 2.45, color="#c44e52", linestyle="-.", linewidth=1.5, label="goal: 1 s")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot, clear of the bars
    ax.set_title("20 x `SELECT sleep(1)` at once on 4 slots", fontsize=10)
    return _save(fig, out / "perf-sleepers.png")


def draw(runs: Runs, out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [plot(runs, out) for plot in (plot_start, plot_memory, plot_async, plot_sleepers)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=INPUT, help="startup_memory.py's JSON")
    parser.add_argument("--out", type=Path, default=OUT, help="directory for the PNGs")
    args = parser.parse_args()
    runs: Runs = json.loads(args.input.read_text())
    for path in draw(runs, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
