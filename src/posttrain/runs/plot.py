"""The run's curves as a PNG (matplotlib, no display needed).

Per-batch series (every series not under ``test/``) swing with the batch, so each is drawn twice: the raw
values faint and thin, and their trailing moving average (:func:`posttrain.runs.smoothing.moving_average`)
bold in the same colour, labelled with its window. Evaluation series (``test/...``) are already averages
over the test set and are drawn as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posttrain.runs.smoothing import default_window, moving_average

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

EVAL_PREFIX = "test/"
RAW_ALPHA = 0.3


def plot_curves(rows: Sequence[dict[str, Any]], series: Sequence[tuple[str, str]], out: Path, title: str, *,
                window: int | None = None, smooth: Collection[str] | None = None) -> Path:
    """One line per ``(metric key, label)`` over ``step``, saved to ``out``; see :func:`curves_figure`."""
    import matplotlib.pyplot as plt

    fig = curves_figure(rows, series, title, window=window, smooth=smooth)
    fig.savefig(out)
    plt.close(fig)
    return out


def curves_figure(rows: Sequence[dict[str, Any]], series: Sequence[tuple[str, str]], title: str, *,
                  window: int | None = None, smooth: Collection[str] | None = None) -> Figure:
    """The curves as a figure; metrics missing on a step are skipped.

    ``smooth``: the keys drawn raw plus moving average (default: every key not under ``test/``);
    ``window``: the average's window (default :func:`~posttrain.runs.smoothing.default_window` of the
    series' length). A series whose window comes out as 1 is drawn once, as it is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for key, label in series:
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
        if not points:
            continue
        xs, ys = (list(v) for v in zip(*points, strict=True))
        smoothed = key in smooth if smooth is not None else not key.startswith(EVAL_PREFIX)
        size = (window or default_window(len(ys))) if smoothed else 1
        _draw(ax, xs, ys, label, size)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _draw(ax: Axes, xs: list[Any], ys: list[float], label: str, window: int) -> None:
    """Raw values alone, or faint raw values under their bold moving average (one colour for both)."""
    if window <= 1:
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        return
    (raw,) = ax.plot(xs, ys, alpha=RAW_ALPHA, linewidth=0.8, label=f"{label} (per batch)")
    ax.plot(xs, moving_average(ys, window), color=raw.get_color(), linewidth=2.0,
            label=f"{label} (mean of {window})")
