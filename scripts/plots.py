"""Figures from a benchmark results file (scripts.bench), as PNG and SVG.

    python -m scripts.plots results/quick.json [--out results/]

prints the path of each figure it wrote. From a notebook:

    from scripts import plots
    results = plots.load("results/quick.json")
    plots.throughput(results, endpoint="io-async")
    plots.latency(results, endpoint="hello", concurrency=32)
    plots.memory(results)
    plots.cgi_phases(results)
    plots.websocket(results)            # from python -m scripts.bench --websocket

Each plotting function draws on `ax` (a new figure when it is None) and returns the axes.
Every figure shows medians over the repeats; error bars span the lowest to the highest repeat.
"""

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import matplotlib

if __name__ == "__main__":
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# One colour per server, the same in every figure: toy servers strong, references light.
COLOURS = {
    "cgi": "#8c564b", "cgi-floor": "#c49c94",
    "wsgi": "#1f77b4", "gunicorn": "#aec7e8", "gunicorn-gthread": "#6baed6",
    "asgi": "#d62728", "uvicorn": "#ff9896", "uvicorn-fast": "#fd8d3c", "daphne": "#9467bd",
}
SERVER_ORDER = list(COLOURS)
AGGREGATE_PHASES = ("child", "total")


def load(path):
    """A results file as {"metadata": {...}, "rows": [...]}; .json or .csv (no metadata)."""
    path = Path(path)
    if path.suffix == ".csv":
        with open(path, newline="") as file:
            rows = [_typed(row) for row in csv.DictReader(file)]
        return {"metadata": {}, "rows": rows, "path": str(path)}
    with open(path) as file:
        results = json.load(file)
    results["path"] = str(path)
    return results


def _typed(row):
    typed = {}
    for key, value in row.items():
        if value == "":
            typed[key] = None
        elif key == "server_timing_ms":
            typed[key] = json.loads(value)
        else:
            try:
                typed[key] = int(value)
            except ValueError:
                try:
                    typed[key] = float(value)
                except ValueError:
                    typed[key] = value
    return typed


def _servers(rows):
    present = {row["server"] for row in rows}
    return [name for name in SERVER_ORDER if name in present] + sorted(present - set(SERVER_ORDER))


def _websocket(row):
    return str(row.get("endpoint", "")).startswith("ws-")


def _load_rows(results):
    return [row for row in results["rows"] if row.get("held") is None and not _websocket(row)]


def _medians(rows, key):
    """{(server, concurrency): (median, low, high)} of one field over the repeats."""
    groups = {}
    for row in rows:
        if row.get(key) is not None:
            groups.setdefault((row["server"], row["concurrency"]), []).append(row[key])
    return {cell: (statistics.median(v), min(v), max(v)) for cell, v in groups.items()}


def _axes(ax, size=(7, 4.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def pinning_note(metadata):
    """How server and load generator shared the machine, as a figure's title says it:
    "server on core 0, load on core 1", "unpinned: server and load shared every core",
    or "" when the results file does not say (a .csv)."""
    pinning = metadata.get("pinning")
    if not pinning:
        return ""
    if pinning.get("server_cpus") and pinning.get("loader_cpus"):
        def cores(cpus):
            return f"core{'s' if len(cpus) > 1 else ''} {','.join(map(str, cpus))}"
        return f"server on {cores(pinning['server_cpus'])}, load on {cores(pinning['loader_cpus'])}"
    return "unpinned: server and load shared every core"


def _title(ax, text, results):
    machine = results.get("metadata", {})
    note = ""
    if machine:
        note = f"\n{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, {machine.get('date', '')[:10]}"
        pinning = pinning_note(machine)
        if pinning:
            note += f"\n{pinning}"
    ax.set_title(text + note, fontsize=10)


def throughput_endpoint(results):
    """The endpoint measured at the most concurrency levels (the default for throughput())."""
    levels = {}
    for row in _load_rows(results):
        levels.setdefault(row["endpoint"], set()).add(row["concurrency"])
    return max(levels, key=lambda name: (len(levels[name]), name == "io-async")) if levels else None


def throughput(results, endpoint=None, ax=None):
    """Requests per second against concurrency, one line per server."""
    endpoint = endpoint or throughput_endpoint(results)
    rows = [row for row in _load_rows(results) if row["endpoint"] == endpoint]
    cells = _medians(rows, "rps")
    ax = _axes(ax)
    for server in _servers(rows):
        points = sorted((level, m) for (name, level), m in cells.items() if name == server)
        if not points:
            continue
        levels = [level for level, _ in points]
        middle = [m[0] for _, m in points]
        errors = [[m[0] - m[1] for _, m in points], [m[2] - m[0] for _, m in points]]
        ax.errorbar(levels, middle, yerr=errors, marker="o", capsize=3, label=server,
                    color=COLOURS.get(server), linewidth=2 if server in ("cgi", "wsgi", "asgi") else 1.2)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent connections")
    ax.set_ylabel("requests per second")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    path = rows[0]["path"] if rows else ""
    _title(ax, f"Throughput against concurrency: {endpoint} ({path})", results)
    return ax


def latency(results, endpoint=None, concurrency=None, ax=None):
    """p50, p90 and p99 latency per server for one cell (by default the one most servers share)."""
    rows = _load_rows(results)
    if endpoint is None or concurrency is None:
        counts = {}
        for row in rows:
            if (endpoint is None or row["endpoint"] == endpoint) and (
                    concurrency is None or row["concurrency"] == concurrency):
                counts.setdefault((row["endpoint"], row["concurrency"]), set()).add(row["server"])
        endpoint, concurrency = max(counts, key=lambda cell: (len(counts[cell]), cell[0] == "hello"))
    rows = [row for row in rows if row["endpoint"] == endpoint and row["concurrency"] == concurrency]
    servers = _servers(rows)
    ax = _axes(ax)
    width = 0.27
    for offset, (key, shade) in enumerate([("p50_ms", 1.0), ("p90_ms", 0.7), ("p99_ms", 0.45)]):
        cells = _medians(rows, key)
        values = [cells.get((server, concurrency), (0, 0, 0))[0] for server in servers]
        bars = ax.bar([i + (offset - 1) * width for i in range(len(servers))], values, width,
                      label=key.split("_")[0], color=[COLOURS.get(s, "grey") for s in servers], alpha=shade,
                      edgecolor="black", linewidth=0.4)
        if offset == 0:
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(servers)), servers, rotation=20, fontsize=8)
    ax.set_ylabel("latency (ms)")
    ax.legend(fontsize=8, title="percentile (lighter = higher)", title_fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    _title(ax, f"Latency percentiles: {endpoint} at {concurrency} connections", results)
    return ax


def memory(results, ax=None):
    """Server memory (RSS, all processes) against the long-lived streams it holds open."""
    rows = [row for row in results["rows"] if row.get("held") is not None and not _websocket(row)]
    ax = _axes(ax)
    for server in _servers(rows):
        points = sorted((row["held"], row["rss_mb"], row["rss_idle_mb"], row["concurrency"])
                        for row in rows if row["server"] == server)
        xs = [0] + [p[0] for p in points]
        ys = [points[0][2]] + [p[1] for p in points]
        ax.plot(xs, ys, marker="o", label=server, color=COLOURS.get(server))
        held, rss, _, requested = max(points, key=lambda point: point[3])
        if held < requested:
            ax.annotate(f"{server}: {held} of {requested} opened", (held, rss), fontsize=7,
                        textcoords="offset points", xytext=(6, -3))
    ax.set_xlabel("open streams held (where a server could not open them all: how many it did)")
    ax.set_ylabel("RSS (MB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _title(ax, "Memory against open connections (server-sent events)", results)
    return ax


def cgi_phases(results, ax=None):
    """Where one CGI request's time goes: the Server-Timing phases stacked, per endpoint,
    with the runner's own overhead on top, beside the spawn floor's latency."""
    rows = [row for row in results["rows"] if row["server"] == "cgi" and row.get("server_timing_ms")]
    floors = [row for row in results["rows"] if row["server"] == "cgi-floor"]
    ax = _axes(ax)
    cells = sorted({(row["endpoint"], row["concurrency"]) for row in rows})
    phase_names = []
    for row in rows:
        for name in row["server_timing_ms"]:
            if name not in phase_names and name not in AGGREGATE_PHASES:
                phase_names.append(name)
    colours = plt.get_cmap("tab10")
    labels = []
    for i, (endpoint, level) in enumerate(cells):
        cell_rows = [row for row in rows if row["endpoint"] == endpoint and row["concurrency"] == level]
        bottom = 0.0
        segments = [(name, statistics.median(row["server_timing_ms"].get(name, 0.0) for row in cell_rows))
                    for name in phase_names]
        children = [row["server_timing_ms"]["child"] for row in cell_rows if "child" in row["server_timing_ms"]]
        if children:
            rest = statistics.median(children) - sum(ms for _, ms in segments)
            segments.append(("rest of the child (output, exit)", max(0.0, rest)))
        overheads = [row["overhead_ms"] for row in cell_rows if row.get("overhead_ms") is not None]
        if overheads:
            segments.append(("runner overhead", statistics.median(overheads)))
        for j, (name, ms) in enumerate(segments):
            ax.bar(2 * i, ms, 0.8, bottom=bottom, color=colours(j), edgecolor="black", linewidth=0.4,
                   label=name if i == 0 else None)
            bottom += ms
        ax.annotate(f"{bottom:.0f} ms", (2 * i, bottom), ha="center", va="bottom", fontsize=8)
        floor = [row["p50_ms"] for row in floors if row["endpoint"] == endpoint and row["concurrency"] == level
                 and row.get("p50_ms") is not None]
        if floor:
            ax.bar(2 * i + 0.9, statistics.median(floor), 0.8, color=COLOURS["cgi-floor"], edgecolor="black",
                   linewidth=0.4, hatch="//", label="spawn floor (script run directly), p50" if i == 0 else None)
        labels.append(f"{endpoint} x{level}")
    ax.set_xticks([2 * i + 0.45 for i in range(len(cells))], labels, fontsize=8)
    ax.set_ylabel("milliseconds per request (median)")
    ax.grid(True, axis="y", alpha=0.3)
    if cells:
        ax.set_xlim(-1, 2 * len(cells) + 2.5)
        ax.legend(fontsize=8, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no CGI rows with Server-Timing in this file", ha="center", transform=ax.transAxes)
    _title(ax, "CGI: time per request by phase", results)
    return ax


def waiting(results, ax=None):
    """The lesson of the I/O scenario: the same 50 ms wait in a sync view (/io) and an
    async view (/io-async), side by side on one scale, throughput against concurrency."""
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, layout="constrained")
    for panel, endpoint in zip(ax, ("io", "io-async")):
        throughput(results, endpoint=endpoint, ax=panel)
    # Each panel fixed its own scale as it was drawn; one scale fits both.
    ax[0].set_ylim(0, max(panel.dataLim.y1 for panel in ax) * 1.08)
    ax[1].set_ylabel("")
    return ax[0]


def websocket(results, ax=None):
    """The WebSocket matrix: echo round trips per second (median, bars from the lowest to the
    highest repeat), and the server's memory per idle open WebSocket at each count."""
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    echo = [row for row in results["rows"] if row.get("endpoint") == "ws-echo"]
    idle = [row for row in results["rows"] if row.get("endpoint") == "ws-idle" and row.get("kb_per_connection")]
    rates = _medians(echo, "rps")
    servers = _servers(echo)
    middles = [next(m for (name, _), m in rates.items() if name == server) for server in servers]
    bars = ax[0].bar(servers, [m[0] for m in middles], color=[COLOURS.get(s, "grey") for s in servers],
                     yerr=[[m[0] - m[1] for m in middles], [m[2] - m[0] for m in middles]], capsize=4)
    ax[0].bar_label(bars, fmt="%.0f", fontsize=8)
    level = echo[0]["concurrency"] if echo else "?"
    ax[0].set_ylabel("echo round trips per second")
    ax[0].grid(True, axis="y", alpha=0.3)
    app = results.get("metadata", {}).get("options", {}).get("websocket_app", "")
    _title(ax[0], f"WebSocket echo at {level} connections {app}".rstrip(), results)
    counts = sorted({row["concurrency"] for row in idle})
    idle_servers = _servers(idle)
    width = 0.8 / max(1, len(idle_servers))
    for i, server in enumerate(idle_servers):
        values = [next((row["kb_per_connection"] for row in idle if row["server"] == server
                        and row["concurrency"] == count), 0) for count in counts]
        bars = ax[1].bar([j + i * width for j in range(len(counts))], values, width, label=server,
                         color=COLOURS.get(server, "grey"), edgecolor="black", linewidth=0.4)
        ax[1].bar_label(bars, fmt="%.1f", fontsize=7)
    ax[1].set_xticks([j + width * (len(idle_servers) - 1) / 2 for j in range(len(counts))],
                     [f"{count:,} idle" for count in counts])
    ax[1].set_ylabel("server memory per open WebSocket (kB)")
    ax[1].grid(True, axis="y", alpha=0.3)
    ax[1].legend(fontsize=8)
    _title(ax[1], "Server memory per idle WebSocket", results)
    return ax[0]


def _has_levels(results, endpoint):
    return len({row["concurrency"] for row in _load_rows(results) if row["endpoint"] == endpoint}) >= 2


FIGURES = {
    "throughput": throughput,
    "waiting": waiting,
    "latency": latency,
    "memory": memory,
    "cgi_phases": cgi_phases,
    "websocket": websocket,
}


def available(results):
    """The figures this results file has data for."""
    rows = results["rows"]
    names = []
    if _load_rows(results):
        names += ["throughput", "latency"]
    if _has_levels(results, "io") and _has_levels(results, "io-async"):
        names.append("waiting")
    if any(row.get("held") is not None and not _websocket(row) for row in rows):
        names.append("memory")
    if any(row["server"] == "cgi" and row.get("server_timing_ms") for row in rows):
        names.append("cgi_phases")
    if any(row.get("endpoint") == "ws-echo" for row in rows):
        names.append("websocket")
    return names


def save_all(results, out=None, formats=("png", "svg")):
    """Draw every figure the file has data for; returns the paths written."""
    out = Path(out) if out else Path(results["path"]).parent
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(results["path"]).stem
    paths = []
    for name in available(results):
        ax = FIGURES[name](results)
        for extension in formats:
            path = out / f"{stem}-{name}.{extension}"
            ax.figure.savefig(path, dpi=120)
            paths.append(path)
        plt.close(ax.figure)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scripts.plots", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default="results/quick.json", help="a .json (or .csv) from scripts.bench")
    parser.add_argument("--out", help="folder for the figures (default: next to the results file)")
    args = parser.parse_args(argv)
    results = load(args.results)
    for path in save_all(results, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
