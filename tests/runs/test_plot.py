"""curves.png: per-batch series raw (faint) beside their moving average (bold); the averages the summary
compares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from posttrain.runs.plot import RAW_ALPHA, curves_figure, plot_curves
from posttrain.runs.smoothing import default_window, moving_average, summary_span


def numpy_trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The same average by another route: differences of a cumulative sum."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (csum[ends] - csum[starts]) / (ends - starts)


@pytest.mark.parametrize("window", [1, 2, 4, 10, 57, 200])
def test_moving_average_matches_numpy(window: int) -> None:
    values = np.random.default_rng(window).normal(1.5, 0.4, size=57)
    got = moving_average(values.tolist(), window)
    assert len(got) == len(values)
    np.testing.assert_allclose(got, numpy_trailing_mean(values, window), rtol=1e-12)


def test_moving_average_starts_from_the_first_point() -> None:
    assert moving_average([4.0, 2.0, 6.0, 0.0], 3) == [4.0, 3.0, 4.0, 8 / 3]
    assert moving_average([], 3) == []
    with pytest.raises(ValueError, match="window must be ≥ 1"):
        moving_average([1.0], 0)


def test_default_window() -> None:
    assert [default_window(n) for n in (0, 1, 7, 8, 16, 39, 40, 1000)] == [1, 1, 1, 2, 4, 9, 10, 10]


def test_summary_span_compares_averages_not_single_batches() -> None:
    nll = [1.97, 1.90, 1.95, 1.90, 1.5, 1.4, 1.3, 1.25, 1.1, 1.2, 1.3, 1.65]  # the last batch an outlier
    first, last = summary_span(nll)  # window 3 (12 // 4)
    assert (first, last) == (pytest.approx(np.mean(nll[:3])), pytest.approx(np.mean(nll[-3:])))
    assert summary_span(nll, 4) == (pytest.approx(np.mean(nll[:4])), pytest.approx(np.mean(nll[-4:])))
    assert summary_span([2.0, 1.0], 10) == (1.5, 1.5)  # the window is cut to the values there are
    assert summary_span([3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError):
        summary_span([])


def sft_rows(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = [{"step": s, "train_mean_nll": 2.0 - s / n + float(rng.normal(0, 0.3))}
                                  for s in range(n)]
    for r in rows[::5]:
        r["test/nll"] = 2.1 - r["step"] / n
    return rows


SERIES = (("train_mean_nll", "train NLL"), ("test/nll", "test NLL"))


def test_curves_show_a_moving_average_beside_the_raw_train_nll() -> None:
    rows = sft_rows(40)
    fig = curves_figure(rows, SERIES, "SFT")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"train NLL (per batch)", "train NLL (mean of 10)", "test NLL"}
    raw, avg, test = lines["train NLL (per batch)"], lines["train NLL (mean of 10)"], lines["test NLL"]
    nll = [r["train_mean_nll"] for r in rows]
    assert list(raw.get_ydata()) == nll and raw.get_alpha() == RAW_ALPHA
    assert list(avg.get_ydata()) == moving_average(nll, 10) and avg.get_alpha() is None
    assert avg.get_linewidth() > raw.get_linewidth() and avg.get_color() == raw.get_color()
    assert list(test.get_xdata()) == list(range(0, 40, 5))  # eval points drawn as they are
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["train NLL (per batch)", "train NLL (mean of 10)", "test NLL"]


def test_curves_window_and_smoothed_keys_can_be_chosen() -> None:
    fig = curves_figure(sft_rows(40), SERIES, "SFT", window=3, smooth={"test/nll"})
    assert sorted(line.get_label() for line in fig.axes[0].get_lines()) == [
        "test NLL (mean of 3)", "test NLL (per batch)", "train NLL"]


def test_a_short_run_is_drawn_once() -> None:
    fig = curves_figure(sft_rows(6), SERIES, "SFT")  # window 1: nothing to average
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train NLL", "test NLL"]


def test_plot_curves_writes_the_png(tmp_path: Path) -> None:
    import matplotlib.image

    out = plot_curves(sft_rows(40), SERIES, tmp_path / "curves.png", "SFT")
    assert out == tmp_path / "curves.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(out).shape[:2] == (440, 770)  # 7 × 4 inches at 110 dpi
