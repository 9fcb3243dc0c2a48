"""Trends of noisy per-batch metrics: a trailing moving average for the curves, and averaged start and end
values for the run summary.

One batch's train NLL swings with the batch (its length, its topic), so comparing the first batch with
the last says little; the mean of the first few steps against the mean of the last few shows the trend.
Both use the same window, by default :func:`default_window`.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_DEFAULT_WINDOW = 10


def default_window(n: int) -> int:
    """``max(1, min(10, n // 4))``: a quarter of the run, at most 10 steps, so a short run still has a
    first and a last window that barely overlap, and a long run's average follows its trend closely."""
    return max(1, min(MAX_DEFAULT_WINDOW, n // 4))


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over ``window`` points, defined from the first point: point ``i`` averages
    ``values[max(0, i - window + 1) : i + 1]``, so the start averages the fewer points there are."""
    if window < 1:
        raise ValueError(f"window must be ≥ 1, got {window}")
    # Each window summed afresh rather than as a running sum: no drift over long runs, and windows are short.
    return [_mean(values[max(0, i - window + 1):i + 1]) for i in range(len(values))]


def _mean(values: Sequence[float]) -> float:
    return float(sum(values)) / len(values)


def summary_span(values: Sequence[float], window: int | None = None) -> tuple[float, float]:
    """The mean of the first ``window`` values and the mean of the last ``window`` (``window`` defaults to
    :func:`default_window` of ``len(values)``, and is cut to ``len(values)``), for a summary line like
    ``train NLL 1.93 → 1.21 (mean of first/last 4 steps)``."""
    if not values:
        raise ValueError("summary_span needs at least one value")
    size = min(default_window(len(values)) if window is None else window, len(values))
    if size < 1:
        raise ValueError(f"window must be ≥ 1, got {window}")
    return _mean(values[:size]), _mean(values[-size:])
