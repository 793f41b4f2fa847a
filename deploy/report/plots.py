"""The accuracy-latency plot of one device table (matplotlib, Agg; PNG and SVG)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from deploy.report.frame import report_frame
from deploy.report.tables import DeviceTable

# Pareto state -> (colour, marker, legend text); dominated points are drawn hollow.
_STYLES = {
    "yes": ("#1f77b4", "o", "on the front"),
    "tie": ("#ff7f0e", "D", "tie: on the front within the 95% intervals"),
    "no": ("#7f7f7f", "o", "dominated beyond the 95% intervals"),
}
# Where a point's label may go, in points from the point, tried in this order.
_LABEL_OFFSETS = ((7, 7), (7, -7), (-7, 7), (-7, -7), (10, 18), (10, -18), (-10, 18), (-10, -18), (12, 30), (12, -30),
                  (-12, 30), (-12, -30))
_LABEL_SIZE = 7
_LEADER = {"arrowstyle": "-", "color": "#aaaaaa", "lw": 0.6, "shrinkA": 0, "shrinkB": 4}
# Half the size, in pixels, of the square around a marker that labels keep clear of.
_MARKER_PX = 6
# A label sticking out of the axes costs this many times the area outside (it may be cut off).
_OUTSIDE_PENALTY = 4
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


def plot_table(table: DeviceTable, directory: Path) -> tuple[Path, Path]:
    """Draw the table's metric against p50 latency with 95% interval bars, the front as a
    step line and every point labelled; write `<slug>.png` and `<slug>.svg` into `directory`.

    Only rows with deployed accuracy are drawn; the caption lists the others.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rated = report_frame(row for row in table.rows if row.deployed is not None)
    if rated.empty:
        raise ValueError(f"{table.title}: no row has deployed accuracy to plot")
    figure = Figure(figsize=(8.5, 5.8))
    figure.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.14)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()

    front = rated[rated["pareto"].isin(["yes", "tie"])].sort_values("p50_ms")
    best_so_far = front["accuracy"].cummax() if table.metric.higher_is_better else front["accuracy"].cummin()
    axes.plot(front["p50_ms"], best_so_far, drawstyle="steps-post", color=_STYLES["yes"][0],
              alpha=0.5, linewidth=1.5, zorder=1, label="Pareto front")
    for state, (colour, marker, legend) in _STYLES.items():
        part = rated[rated["pareto"] == state]
        if part.empty:
            continue
        axes.errorbar(
            part["p50_ms"], part["accuracy"],
            xerr=[part["p50_ms"] - part["ci95_low_ms"], part["ci95_high_ms"] - part["p50_ms"]],
            fmt=marker, color=colour, markerfacecolor="white" if state == "no" else colour,
            markersize=6, capsize=3, elinewidth=1, linestyle="none", zorder=3, label=legend,
        )
    axes.margins(x=0.06, y=0.12)
    _make_room_for_labels(figure, axes, rated)
    _label_points(figure, axes, rated, table.metric.higher_is_better)

    unit = "ms, emulated: relative only" if table.emulated else "ms"
    axes.set_xlabel(f"p50 latency ({unit}); bars: 95% interval of the median")
    axes.set_ylabel(f"{table.metric.heading} (deployed artifact)")
    if not table.metric.higher_is_better:
        axes.invert_yaxis()  # better is up, as for top-1
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8, framealpha=0.9)
    axes.set_title("\n".join(textwrap.wrap(table.title, 80)), fontsize=10)
    unrated = [row.label for row in table.rows if row.deployed is None]
    if unrated:
        figure.text(0.01, 0.005, "\n".join(textwrap.wrap(f"not drawn (no deployed {table.metric.title}): " + ", ".join(unrated), 130)),
                    fontsize=7, color="#555555", va="bottom")

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / f"{table.slug}.png"
    svg = directory / f"{table.slug}.svg"
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": table.slug}):
        figure.savefig(png, dpi=150)
        figure.savefig(svg, metadata=_NO_METADATA)
    return png, svg


def _make_room_for_labels(figure, axes, rated) -> None:
    """Widen the x range so the widest label fits right of the slowest point."""
    renderer = figure.canvas.get_renderer()
    probe = axes.text(0, 0, max(rated["label"], key=len), fontsize=_LABEL_SIZE)
    label_px = probe.get_window_extent(renderer).width + 20
    probe.remove()
    fraction = min(label_px / axes.get_window_extent(renderer).width, 0.45)
    low, _ = axes.get_xlim()
    slowest = float(rated["ci95_high_ms"].max())
    axes.set_xlim(low, (slowest - fraction * low) / (1 - fraction))


def _label_points(figure, axes, rated, higher_is_better: bool) -> None:
    """Label each point with its row label, moving labels off each other where possible."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = figure.canvas.get_renderer()
    figure.draw_without_rendering()
    points = axes.transData.transform(rated[["p50_ms", "accuracy"]].to_numpy(dtype=float))
    frame = axes.get_window_extent(renderer)
    placed = [Bbox.from_extents(x - _MARKER_PX, y - _MARKER_PX, x + _MARKER_PX, y + _MARKER_PX) for x, y in points]
    for row in rated.sort_values(["accuracy", "p50_ms"], ascending=[not higher_is_better, True]).itertuples():
        best = None
        for dx, dy in _LABEL_OFFSETS:
            text = axes.annotate(row.label, (row.p50_ms, row.accuracy), xytext=(dx, dy), textcoords="offset points",
                                 fontsize=_LABEL_SIZE, ha="left" if dx > 0 else "right", va="center", zorder=4,
                                 arrowprops=_LEADER)
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer)  # the text alone, without its leader line
            outside = box.width * box.height - _overlap_area(box, frame)
            overlap = sum(_overlap_area(box, other) for other in placed) + _OUTSIDE_PENALTY * outside
            if best is None or overlap < best[0]:
                if best is not None:
                    best[1].remove()
                best = (overlap, text, box)
            else:
                text.remove()
            if overlap == 0:
                break
        placed.append(best[2])


def _overlap_area(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)
